"""The proposals server: paging, the weekly report as resources, and the analyst prompts."""

import json
from pathlib import Path

import pytest
from mcp.shared.memory import create_connected_server_and_client_session

from mcp_servers import proposals as proposals_server
from tests.factories import cluster_dict, proposal_dict, summary_dict
from voc.config import Settings
from voc.contracts import Cluster, Proposal
from voc.lifecycle import ProposalBook
from voc.storage import Store

OWNER, TAG = "信息科技部", "系统设备>登录认证>验证码收不到"


def proposal(number: int, owner: str = OWNER) -> dict:
    return proposal_dict(proposal_id=f"PR-2026-W47-{number:03d}", cluster_id=f"C{number:03d}", owner_department=owner,
                         problem=f"问题{number}", due_date="2026-12-04")


def cluster(number: int, rising: bool = True, priority: str = "P2", size: int = 10) -> dict:
    return cluster_dict(cluster_id=f"C{number:03d}", tag=f"{TAG}{number}", keywords=[f"词{number}"], size=size,
                        current_count=size, owner_department=OWNER, priority=priority, rising=rising)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(data_dir=tmp_path / "data")
    book = ProposalBook(Store(settings.resolved_database_url))
    book.register("run-1", "2026-W47", [Proposal.model_validate(proposal(n)) for n in range(1, 6)],
                  [Cluster.model_validate(cluster(n)) for n in range(1, 6)])
    run_dir = settings.runs_dir / "2026-W47-offline-1"
    run_dir.mkdir(parents=True)
    clusters = [cluster(1, priority="P1"), cluster(2, rising=False), cluster(3, size=30), cluster(4, priority="P3")]
    files = {"clusters.json": clusters, "proposals.json": [proposal(1), proposal(3)],
             "run.json": summary_dict("2026-W47-offline-1", "2026-11-16", "2026-11-22", "2026-W47")}
    for name, content in files.items():
        (run_dir / name).write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
    (run_dir / "voices.jsonl").write_text("", encoding="utf-8")
    return settings


async def test_lists_page_with_limit_and_offset(settings: Settings) -> None:
    async with create_connected_server_and_client_session(proposals_server.create_server(settings)) as client:
        first = (await client.call_tool("list_proposals", {"limit": 2})).structuredContent
        assert first["total"] == 5 and len(first["items"]) == 2 and first["next_offset"] == 2
        last = (await client.call_tool("list_proposals", {"limit": 2, "offset": 4})).structuredContent
        assert [p["proposal_id"] for p in last["items"]] == ["PR-2026-W47-005"] and last["next_offset"] is None
        problems = (await client.call_tool("list_problems", {"week": "2026-W47", "rising_only": True,
                                                             "limit": 2})).structuredContent
        assert problems["total"] == 3 and problems["next_offset"] == 2
        assert [p["cluster_id"] for p in problems["items"]] == ["C001", "C003"]  # P1 first, then the larger
        assert problems["items"][1]["proposal_id"] == "PR-2026-W47-003"
        rest = (await client.call_tool("list_problems", {"week": "2026-W47", "rising_only": True, "limit": 2,
                                                         "offset": 2})).structuredContent
        assert [p["cluster_id"] for p in rest["items"]] == ["C004"] and rest["next_offset"] is None
        too_many = await client.call_tool("list_proposals", {"limit": 501})
        assert too_many.isError and "limit" in too_many.content[0].text
        unknown = await client.call_tool("list_proposals", {"owner": OWNER})
        assert unknown.isError and "unknown argument owner" in unknown.content[0].text


async def test_domain_errors_keep_their_words(settings: Settings) -> None:
    async with create_connected_server_and_client_session(proposals_server.create_server(settings)) as client:
        missing = await client.call_tool("get_proposal", {"proposal_id": "PR-nope"})
        assert missing.isError and missing.content[0].text.startswith("no proposal")
        bad_week = await client.call_tool("register_run", {"run_id": "r", "week": "../../etc", "proposals": [],
                                                           "clusters": [], "volumes": {}})
        assert bad_week.isError and "不是周次" in bad_week.content[0].text


async def test_the_weekly_report_as_resources(settings: Settings) -> None:
    reports = settings.resolved_data_dir / "reports"
    for week in ("2026-W46", "2026-W47", "2026-W09"):
        (reports / week).mkdir(parents=True)
        (reports / week / "report.md").write_text(f"# 客户心声 {week}\n", encoding="utf-8")
    async with create_connected_server_and_client_session(proposals_server.create_server(settings)) as client:
        listed = {str(r.uri): r for r in (await client.list_resources()).resources}
        assert set(listed) == {"voc://reports/latest"} and listed["voc://reports/latest"].mimeType == "text/markdown"
        templates = [t.uriTemplate for t in (await client.list_resource_templates()).resourceTemplates]
        assert templates == ["voc://reports/{week}"]
        latest = await client.read_resource("voc://reports/latest")
        assert latest.contents[0].text == "# 客户心声 2026-W47\n"
        one = await client.read_resource("voc://reports/2026-W46")
        assert one.contents[0].text == "# 客户心声 2026-W46\n"
        with pytest.raises(Exception, match="no report for 2026-W40"):
            await client.read_resource("voc://reports/2026-W40")
        with pytest.raises(Exception, match="not an ISO week"):
            await client.read_resource("voc://reports/last-week")


async def test_latest_report_missing_says_what_to_do(tmp_path: Path) -> None:
    server = proposals_server.create_server(Settings(data_dir=tmp_path))
    async with create_connected_server_and_client_session(server) as client:
        with pytest.raises(Exception, match="voc report --week"):
            await client.read_resource("voc://reports/latest")


async def test_analyst_prompts(settings: Settings) -> None:
    async with create_connected_server_and_client_session(proposals_server.create_server(settings)) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        assert set(prompts) == {"rising_problems", "pending_proposals", "proposal_effect"}
        assert all(p.title and p.description and all(a.description for a in p.arguments or [])
                   for p in prompts.values())
        assert {a.name: a.required for a in prompts["pending_proposals"].arguments} == {
            "owner_department": True, "week": False}
        rising = (await client.get_prompt("rising_problems", {})).messages[0].content.text
        assert rising.startswith("2026-W47 哪些问题在上升")
        assert 'list_problems(week="2026-W47", rising_only=true)' in rising
        pending = (await client.get_prompt("pending_proposals", {"owner_department": OWNER})).messages[0].content.text
        assert f'list_proposals(owner_department="{OWNER}")' in pending
        effect = (await client.get_prompt("proposal_effect", {"proposal": "积分规则"})).messages[0].content.text
        assert "积分规则" in effect and "evaluate_proposal" in effect
