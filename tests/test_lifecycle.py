"""The closed loop: lifecycle transitions, overdue flags, recurrence matching and effect evaluation."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from mcp.shared.memory import create_connected_server_and_client_session

from mcp_servers import proposals as proposals_server
from tests.factories import cluster_dict, proposal_dict
from voc.config import Settings
from voc.contracts import Cluster, Proposal, ProposalStatus
from voc.lifecycle import LifecycleError, ProposalBook
from voc.periods import shift_week
from voc.storage import Store

OWNER, TAG = "信息科技部", "系统设备>登录认证>验证码收不到"
OTHER_TAG = "系统设备>登录认证>人脸识别失败"


def proposal(pid: str = "PR-2026-W40-001", due: str = "2026-10-09", baseline: int = 20, target: int = 14,
             owner: str = OWNER) -> dict:
    return proposal_dict(proposal_id=pid, owner_department=owner, due_date=due, kpis=[
        {"name": "同类问题负面声量", "baseline": baseline, "target": target, "unit": "件/周", "rule": "下降"}])


def cluster(tag: str = TAG, keywords: list[str] | None = None, count: int = 20) -> dict:
    return cluster_dict(tag=tag, keywords=keywords or ["验证码", "收不到", "短信"], current_count=count)


def register(book: ProposalBook, run_id: str, week: str, proposals: list[dict], clusters: list[dict]) -> dict:
    return book.register(run_id, week, [Proposal.model_validate(p) for p in proposals],
                         [Cluster.model_validate(c) for c in clusters])


@pytest.fixture()
def book(tmp_path: Path) -> ProposalBook:
    return ProposalBook(Store(f"sqlite:///{tmp_path}/voc.db"))


def plant_series(book: ProposalBook, counts: dict[str, int]) -> None:
    for week, count in counts.items():
        book.record_volumes(f"run-{week}", week, {f"{OWNER}|{TAG}": count, f"{OWNER}|{OTHER_TAG}": 3})


def test_lifecycle_moves_one_step_at_a_time_and_records_who(book: ProposalBook) -> None:
    register(book, "run-1", "2026-W40", [proposal()], [cluster()])
    assert book.get("PR-2026-W40-001").status is ProposalStatus.CLAIM
    with pytest.raises(LifecycleError, match="不能直接变为 已完成"):
        book.update("PR-2026-W40-001", "已完成", "张三")
    with pytest.raises(LifecycleError, match="由验证得出"):
        book.update("PR-2026-W40-001", "已验证", "张三")
    with pytest.raises(LifecycleError, match="who"):
        book.update("PR-2026-W40-001", "整改中", " ")
    book.update("PR-2026-W40-001", "整改中", "张三", "已认领，排查短信通道")
    done = book.update("PR-2026-W40-001", "已完成", "李四", "通道扩容上线", on=date(2026, 10, 14))
    assert done.status is ProposalStatus.DONE and done.completed_on == date(2026, 10, 14)
    kinds = [(e.kind, e.from_status, e.to_status, e.actor) for e in done.events]
    assert kinds == [("创建", None, "待认领", "run run-1"), ("状态变更", "待认领", "整改中", "张三"),
                     ("状态变更", "整改中", "已完成", "李四")]
    with pytest.raises(LifecycleError, match="no proposal"):
        book.get("PR-nope")


def test_overdue_only_while_not_fixed(book: ProposalBook) -> None:
    register(book, "run-1", "2026-W40", [proposal(due="2026-10-09")], [cluster()])
    assert not book.get("PR-2026-W40-001", today=date(2026, 10, 9)).overdue
    assert book.get("PR-2026-W40-001", today=date(2026, 10, 12)).overdue
    book.update("PR-2026-W40-001", "整改中", "张三")
    book.update("PR-2026-W40-001", "已完成", "张三", on=date(2026, 10, 14))
    assert not book.get("PR-2026-W40-001", today=date(2026, 10, 20)).overdue


def test_recurrence_matches_the_open_proposal_once_per_week(book: ProposalBook) -> None:
    register(book, "run-1", "2026-W40", [proposal()], [cluster()])
    assert book.match_open(OWNER, TAG, []).id == "PR-2026-W40-001"
    assert book.match_open(OWNER, OTHER_TAG, ["验证码", "收不到", "短信"]).id == "PR-2026-W40-001"
    assert book.match_open(OWNER, OTHER_TAG, ["年费"]) is None
    assert book.match_open("零售银行部", TAG, []) is None
    assert book.match_open(OWNER, TAG, [], exclude=["PR-2026-W40-001"]) is None
    for _ in range(2):  # registering the same run twice records it once
        counts = register(book, "run-2", "2026-W41", [proposal()], [cluster(count=9)])
    assert counts == {"created": 0, "recurred": 0}
    view = book.get("PR-2026-W40-001")
    assert view.last_seen_week == "2026-W41" and [e.kind for e in view.events] == ["创建", "复发"]
    assert view.events[-1].figures == {"current_count": 9}


def test_effect_verified_on_a_planted_drop(book: ProposalBook) -> None:
    plant_series(book, {"2026-W38": 22, "2026-W39": 18, "2026-W40": 21, "2026-W41": 19,  # baseline ≈ 20/week
                        "2026-W43": 6, "2026-W44": 4})
    register(book, "run-1", "2026-W40", [proposal()], [cluster()])
    book.update("PR-2026-W40-001", "整改中", "张三")
    book.update("PR-2026-W40-001", "已完成", "张三", on=date(2026, 10, 22))  # in 2026-W43
    with pytest.raises(LifecycleError, match="至少需要2周"):
        book.evaluate("PR-2026-W40-001")
    plant_series(book, {"2026-W45": 5, "2026-W46": 0})
    effect = book.evaluate("PR-2026-W40-001")
    assert effect.completed_week == "2026-W43"
    assert effect.baseline_weeks == ["2026-W38", "2026-W39", "2026-W40", "2026-W41"]
    assert effect.after_weeks == ["2026-W44", "2026-W45", "2026-W46"]  # the completion week itself is left out
    assert effect.baseline_mean == 20 and effect.after_mean == 3 and effect.reduction == 0.85
    assert effect.p_value < 0.001 and effect.recurrences == 9 and effect.recurring_weeks == 2
    verified = book.verify("PR-2026-W40-001", "质检组")
    assert verified.status is ProposalStatus.VERIFIED
    assert verified.effect is not None and verified.effect.verdict is ProposalStatus.VERIFIED
    assert verified.events[-1].kind == "验证" and "下降85%" in verified.events[-1].note
    assert book.match_open(OWNER, TAG, []) is None  # a verified proposal is closed


def test_a_drop_that_misses_its_target_or_is_noise_fails(book: ProposalBook) -> None:
    plant_series(book, {"2026-W38": 5, "2026-W39": 3, "2026-W40": 4, "2026-W41": 4,
                        "2026-W43": 3, "2026-W44": 4, "2026-W45": 2})
    register(book, "run-1", "2026-W40", [proposal(baseline=4, target=3)], [cluster()])
    book.update("PR-2026-W40-001", "整改中", "张三")
    book.update("PR-2026-W40-001", "已完成", "张三", on=date(2026, 10, 15))  # in 2026-W42
    effect = book.evaluate("PR-2026-W40-001")
    assert effect.reduction == 0.25 and effect.required_reduction == 0.25  # target met on paper…
    assert not effect.significant and effect.verdict is ProposalStatus.FAILED  # …but 16 → 9 voices is not evidence
    failed = book.verify("PR-2026-W40-001", "质检组")
    assert failed.status is ProposalStatus.FAILED
    assert book.update("PR-2026-W40-001", "整改中", "张三", "重新整改").status is ProposalStatus.FIXING


def test_verification_needs_a_completed_proposal_and_a_baseline(book: ProposalBook) -> None:
    register(book, "run-1", "2026-W40", [proposal()], [cluster()])
    with pytest.raises(LifecycleError, match="只有已完成"):
        book.verify("PR-2026-W40-001", "质检组")
    plant_series(book, {"2026-W43": 1, "2026-W44": 1, "2026-W45": 1})
    book.update("PR-2026-W40-001", "整改中", "张三")
    book.update("PR-2026-W40-001", "已完成", "张三", on=date(2026, 10, 14))
    with pytest.raises(LifecycleError, match="无法建立基线"):
        book.evaluate("PR-2026-W40-001")


def test_custom_periods_are_not_weeks_of_the_series(book: ProposalBook) -> None:
    assert book.record_volumes("r", "2026-11-01~2026-11-14", {"a|b": 1}) == 0
    assert shift_week("2026-W01", -1) == "2025-W52" and shift_week("2026-W53", 1) == "2027-W01"


async def test_proposals_server_round_trip(tmp_path: Path) -> None:
    server = proposals_server.create_server(Settings(data_dir=tmp_path))
    async with create_connected_server_and_client_session(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["list_proposals"].annotations.readOnlyHint
        assert not tools["update_proposal"].annotations.readOnlyHint
        registered = await client.call_tool("register_run", {
            "run_id": "r1", "week": "2026-W40", "proposals": [proposal()], "clusters": [cluster()],
            "volumes": {f"{OWNER}|{TAG}": 20}})
        assert registered.structuredContent == {"created": 1, "recurred": 0, "volumes": 1}
        match = await client.call_tool("match_open_proposal", {"owner_department": OWNER, "tag": TAG, "keywords": []})
        assert match.structuredContent["proposal_id"] == "PR-2026-W40-001"
        wrong = await client.call_tool("update_proposal", {"proposal_id": "PR-2026-W40-001", "status": "已验证",
                                                           "actor": "张三"})
        assert wrong.isError and "voc proposals verify" in wrong.content[0].text
        moved = await client.call_tool("update_proposal", {"proposal_id": "PR-2026-W40-001", "status": "整改中",
                                                           "actor": "张三", "note": "认领"})
        assert moved.structuredContent["status"] == "整改中"
        listed = await client.call_tool("list_proposals", {"owner_department": OWNER, "status": "整改中"})
        assert [p["proposal_id"] for p in listed.structuredContent["items"]] == ["PR-2026-W40-001"]


@pytest.mark.parametrize(("change", "message"), [
    ({"owner_department": "不存在的部门"}, "不在服务矩阵中"),
    ({"priority": "P0"}, "不符合输出约定"),
    ({"problem": "<script>alert(1)</script>验证码收不到"}, "标记"),
    ({"short_term_measures": ['<img src=x onerror="alert(1)">']}, "标记"),
    ({"cluster_id": "C999"}, "不在本次运行的问题中"),
    ({"proposal_id": "../../etc/passwd"}, "proposal_id 不合规"),
    ({"short_term_measures": []}, "不符合输出约定"),
    ({"kpis": [{"name": "声量", "baseline": 4, "target": 2, "unit": "<b>件</b>", "rule": "下降50%"}]}, "标记"),
    ({"problem": "[link=http://127.0.0.1:8999/x]点此查看[/link]验证码收不到"}, "标记"),
])
async def test_register_run_refuses_what_the_contract_and_matrix_do_not_allow(tmp_path: Path, change: dict,
                                                                              message: str) -> None:
    server = proposals_server.create_server(Settings(data_dir=tmp_path))
    async with create_connected_server_and_client_session(server) as client:
        result = await client.call_tool("register_run", {
            "run_id": "r1", "week": "2026-W40", "proposals": [proposal() | change], "clusters": [cluster()],
            "volumes": {f"{OWNER}|{TAG}": 20}})
        assert result.isError and message in result.content[0].text
        listed = await client.call_tool("list_proposals", {})
        assert listed.structuredContent["items"] == []


async def test_register_run_never_wipes_a_weeks_volumes_and_writes_nothing_it_refuses(tmp_path: Path) -> None:
    server = proposals_server.create_server(Settings(data_dir=tmp_path))
    book = ProposalBook(Store(Settings(data_dir=tmp_path).resolved_database_url))
    plant_series(book, {"2026-W40": 20})
    async with create_connected_server_and_client_session(server) as client:
        def call(**changes: object) -> Any:
            arguments = {"run_id": "evil", "week": "2026-W40", "proposals": [], "clusters": [], "volumes": {}}
            return client.call_tool("register_run", arguments | changes)

        assert not (await call()).isError  # nothing given, nothing changed
        assert not (await call(volumes={f"{OWNER}|{TAG}": 5})).isError  # one key: only that key changes
        for bad in ({"volumes": {"某部门|x": 1}}, {"volumes": {f"{OWNER}|不存在的标签": 0}},
                    {"week": "9999-W99x"}, {"run_id": "../x"},
                    {"proposals": [proposal()], "clusters": [cluster()], "volumes": {f"{OWNER}|x": 1}}):
            assert (await call(**bad)).isError, bad
        assert book.list() == []  # the refused call with a valid proposal wrote nothing
    with book.store.session() as session:
        from sqlalchemy import select

        from voc.storage import ProblemVolumeRow
        rows = {r.tag: r.negatives for r in session.scalars(select(ProblemVolumeRow))}
    assert rows == {TAG: 5, OTHER_TAG: 3}


def test_a_verified_proposal_becomes_a_case_through_the_cases_server(loaded_kb, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from tests.conftest import copy_of_kb
    from voc.cli import app
    from voc.config import get_settings
    from voc.knowledge_base import KnowledgeBase

    settings = copy_of_kb(loaded_kb, tmp_path)  # recording a case must not leak into other tests
    book = ProposalBook(Store(settings.resolved_database_url))
    plant_series(book, {"2026-W38": 22, "2026-W39": 18, "2026-W40": 21, "2026-W41": 19,
                        "2026-W43": 6, "2026-W44": 4, "2026-W45": 5})
    register(book, "run-1", "2026-W40", [proposal()], [cluster()])
    book.update("PR-2026-W40-001", "整改中", "张三")
    book.update("PR-2026-W40-001", "已完成", "张三", on=date(2026, 10, 22))
    monkeypatch.setenv("VOC_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        early = CliRunner().invoke(app, ["proposals", "record-case", "PR-2026-W40-001", "--by", "质检组"])
        verified = CliRunner().invoke(app, ["proposals", "verify", "PR-2026-W40-001", "--by", "质检组"])
        recorded = CliRunner().invoke(app, ["proposals", "record-case", "PR-2026-W40-001", "--by", "质检组"])
        again = CliRunner().invoke(app, ["proposals", "record-case", "PR-2026-W40-001", "--by", "质检组"])
    finally:
        get_settings.cache_clear()
    assert early.exit_code == 2 and "只有已验证" in early.output
    assert verified.exit_code == 0 and "已验证" in verified.output, verified.output
    assert recorded.exit_code == 0, recorded.output
    view = book.get("PR-2026-W40-001")
    assert view.case_id and view.events[-1].kind == "沉淀案例"
    assert again.exit_code == 2 and "已沉淀" in again.output
    case = KnowledgeBase(settings).get_case(view.case_id)
    assert case is not None and case.source == "闭环沉淀" and case.owner == OWNER and case.period == "2026-W43"
    assert (case.effect[0].before, case.effect[0].after) == ("20", "4.5")
    hits = KnowledgeBase(settings).search_cases("验证码收不到 短信", top_k=3)
    assert view.case_id in [h.case.id for h in hits]
