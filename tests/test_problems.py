"""Problems keep their id from week to week: the registry, its MCP tools and its CLI."""

from pathlib import Path

import pytest
from mcp.shared.memory import create_connected_server_and_client_session
from typer.testing import CliRunner

from mcp_servers import proposals as proposals_server
from voc.config import Settings
from voc.errors import Conflict, Invalid, NotFound
from voc.problems import Candidate, ProblemRegistry
from voc.storage import ProblemRow, Store

IT, CARD = "信息科技部", "信用卡中心"
OTP, FACE, FEE = "系统设备>登录认证>验证码收不到", "系统设备>登录认证>人脸识别失败", "产品设计>收费定价>年费争议"


def otp(label: str = "验证码收不到") -> Candidate:
    return Candidate(IT, OTP, ["验证码", "收不到", "短信"], label)


def face() -> Candidate:
    return Candidate(IT, FACE, ["人脸", "识别", "失败"], "人脸识别失败")


def fee() -> Candidate:
    return Candidate(CARD, FEE, ["年费", "扣费"], "年费争议")


@pytest.fixture
def registry(tmp_path: Path) -> ProblemRegistry:
    return ProblemRegistry(Store(f"sqlite:///{tmp_path / 'voc.db'}"))


def ids(assigned: list) -> list[str]:
    return [a.problem_id for a in assigned]


def test_the_same_problem_keeps_its_id_next_week(registry: ProblemRegistry) -> None:
    first = registry.assign("2026-W46", [otp(), fee()])
    assert ids(first) == ["PB-0001", "PB-0002"] and all(a.created for a in first)
    # Next week: listed in another order, the fee problem's keywords changed a little, and a new one.
    second = registry.assign("2026-W47", [fee()._replace(keywords=["年费", "收费"]), face(), otp("短信验证码延迟")])
    assert ids(second) == ["PB-0002", "PB-0003", "PB-0001"]
    assert [a.created for a in second] == [False, True, False]
    assert second[2].label == "短信验证码延迟"  # no analyst name: the week's own
    # A different tag with mostly the same keywords is the same problem (as lifecycle.match_open).
    slow = Candidate(IT, "系统设备>登录认证>短信延迟", ["验证码", "收不到", "短信", "慢"], "x")
    third = registry.assign("2026-W48", [slow])
    assert ids(third) == ["PB-0001"]
    record = registry.get("PB-0001")
    assert (record.first_week, record.last_week, record.weeks) == ("2026-W46", "2026-W48",
                                                                  ["2026-W46", "2026-W47", "2026-W48"])
    # Another owner is another problem, whatever the words.
    assert ids(registry.assign("2026-W49", [otp()._replace(owner_department=CARD)])) == ["PB-0004"]


def test_a_rename_shows_in_the_next_weeks_label(registry: ProblemRegistry) -> None:
    registry.assign("2026-W46", [otp(), fee()])
    renamed = registry.rename("PB-0001", "短信验证码通道故障", "张三")
    assert renamed.label == "短信验证码通道故障" and renamed.history[-1]["actor"] == "张三"
    next_week = registry.assign("2026-W47", [otp("验证码收不到"), fee()])
    assert [(a.problem_id, a.label, a.analyst_label) for a in next_week] == [
        ("PB-0001", "短信验证码通道故障", "短信验证码通道故障"), ("PB-0002", "年费争议", None)]
    assert registry.rename("PB-0001", "", "张三").label == "验证码收不到"  # cleared: the run's own again
    with pytest.raises(Invalid):
        registry.rename("PB-0001", "<b>x</b>", "张三")
    with pytest.raises(Invalid):
        registry.rename("PB-0001", "新名称", " ")
    with pytest.raises(NotFound):
        registry.rename("PB-0999", "新名称", "张三")


def test_after_a_merge_the_merged_problems_next_week_gets_the_surviving_id(registry: ProblemRegistry) -> None:
    registry.assign("2026-W46", [otp(), face(), fee()])
    merged = registry.merge("PB-0002", "PB-0001", "张三")
    assert merged.merged_into == "PB-0001" and merged.history[-1]["kind"] == "合并"
    # Face alone next week: it carries the surviving id.
    assert ids(registry.assign("2026-W47", [face(), fee()])) == ["PB-0001", "PB-0003"]
    # Both symptoms in one week: the survivor goes to the first; the other gets a new id, never a shared one.
    both = registry.assign("2026-W48", [face(), otp()])
    assert both[0].problem_id == "PB-0001" and both[1].problem_id not in {"PB-0001", "PB-0002"}
    assert [p.problem_id for p in registry.list(include_merged=False)] == ["PB-0001", "PB-0003", "PB-0004"]
    with pytest.raises(Invalid):
        registry.merge("PB-0001", "PB-0001", "张三")
    with pytest.raises(Conflict):
        registry.merge("PB-0003", "PB-0002", "张三")  # into a merged problem
    with pytest.raises(Conflict):
        registry.merge("PB-0002", "PB-0003", "张三")  # already merged
    with pytest.raises(NotFound):
        registry.merge("PB-0003", "PB-0999", "张三")
    # A merge of the survivor carries what was merged into it along.
    registry.merge("PB-0001", "PB-0003", "李四")
    assert registry.get("PB-0002").merged_into == "PB-0003"


def test_two_candidates_never_share_an_id_in_a_week(registry: ProblemRegistry) -> None:
    registry.assign("2026-W46", [otp()])
    week = registry.assign("2026-W47", [otp("甲"), otp("乙"), otp("丙")._replace(keywords=["验证码", "短信"])])
    assert ids(week)[0] == "PB-0001" and len(set(ids(week))) == 3


def test_assigning_a_week_again_gives_the_same_ids(registry: ProblemRegistry) -> None:
    registry.assign("2026-W46", [otp(), fee()])
    week = [Candidate(IT, OTP, ["验证码", "登录"], "a"), face(), fee(), Candidate(IT, OTP, ["短信"], "b")]
    first = registry.assign("2026-W47", week)
    count = len(registry.list())
    assert registry.assign("2026-W47", week) == first
    assert registry.assign("2026-W47", week) == first and len(registry.list()) == count
    # The week again without a problem it created: that one is gone, the rest keep their ids.
    fewer = registry.assign("2026-W47", week[:1] + week[2:])
    assert ids(fewer) == [first[0].problem_id, first[2].problem_id, first[3].problem_id]
    assert len(registry.list()) == count - 1 and first[1].problem_id not in {p.problem_id for p in registry.list()}


async def test_the_assign_and_list_tools(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    candidate = {"owner_department": IT, "tag": OTP, "keywords": ["验证码", "收不到"], "label": "验证码收不到"}
    async with create_connected_server_and_client_session(proposals_server.create_server(settings)) as client:
        # The run's first write may create the store of a new data directory, as register_run does.
        first = await client.call_tool("assign_problems", {"week": "2026-W46", "candidates": [candidate]})
        assert not first.isError and first.structuredContent["items"][0]["problem_id"] == "PB-0001"
        again = (await client.call_tool("assign_problems", {"week": "2026-W47", "candidates": [
            candidate, candidate | {"tag": FACE, "keywords": ["人脸"]}]})).structuredContent
        assert [i["problem_id"] for i in again["items"]] == ["PB-0001", "PB-0002"]
        listed = (await client.call_tool("list_problem_registry", {"limit": 1})).structuredContent
        assert listed["total"] == 2 and listed["next_offset"] == 1
        assert listed["items"][0]["weeks"] == ["2026-W46", "2026-W47"]
        bad_tag = await client.call_tool("assign_problems", {"week": "2026-W47",
                                                             "candidates": [candidate | {"tag": "乱写"}]})
        assert bad_tag.isError and "分类标签" in bad_tag.content[0].text
        markup = await client.call_tool("assign_problems", {"week": "2026-W47",
                                                            "candidates": [candidate | {"label": "<script>"}]})
        assert markup.isError and "标记" in markup.content[0].text
        bad_week = await client.call_tool("assign_problems", {"week": "../x", "candidates": []})
        assert bad_week.isError and "不是周次" in bad_week.content[0].text
        extra = await client.call_tool("assign_problems", {"week": "2026-W47",
                                                           "candidates": [candidate | {"size": 3}]})
        assert extra.isError


def test_the_problems_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from voc.cli import app
    from voc.config import get_settings

    monkeypatch.setenv("VOC_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    settings = get_settings()
    registry = ProblemRegistry(Store(settings.resolved_database_url))
    registry.assign("2026-W46", [otp(), face()])
    runner = CliRunner()
    renamed = runner.invoke(app, ["problems", "rename", "PB-0001", "短信通道故障", "--by", "张三"])
    assert renamed.exit_code == 0 and "短信通道故障" in renamed.output
    merged = runner.invoke(app, ["problems", "merge", "PB-0002", "--into", "PB-0001", "--by", "张三"])
    assert merged.exit_code == 0 and "PB-0002 → PB-0001" in merged.output
    listed = runner.invoke(app, ["problems", "list", "--merged"])
    assert listed.exit_code == 0 and "PB-0001" in listed.output and "短信通道故障" in listed.output
    again = runner.invoke(app, ["problems", "merge", "PB-0002", "--into", "PB-0001", "--by", "张三"])
    assert again.exit_code == 2 and "已合并到 PB-0001" in again.output
    unknown = runner.invoke(app, ["problems", "rename", "PB-0999", "x", "--by", "张三"])
    assert unknown.exit_code == 2 and "没有问题 PB-0999" in unknown.output
    with Store(settings.resolved_database_url).session() as session:
        assert session.get(ProblemRow, "PB-0002") is not None
    get_settings.cache_clear()
