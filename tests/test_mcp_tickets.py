from datetime import datetime, timedelta
from pathlib import Path

import pytest
from mcp.shared.memory import create_connected_server_and_client_session

from mcp_servers.tickets import create_server
from tests.conftest import write_jsonl
from voc.config import Settings
from voc.ingest import Ingestor
from voc.storage import Store

WEEK = "2026-W47"  # Monday 2026-11-16 .. Sunday 2026-11-22


def voices() -> list[dict[str, object]]:
    start = datetime(2026, 11, 9, 10, 0)  # the week before
    rows: list[dict[str, object]] = []
    for i in range(6):
        rows.append({"id": f"prev-{i}", "created_at": (start + timedelta(hours=i)).isoformat(),
                     "channel": "电话客服", "business": "手机银行", "customer_id": f"C{i}",
                     "text": f"手机银行验证码收不到第{i}次"})
    for i in range(30):
        rows.append({"id": f"cur-{i:02d}", "created_at": (start + timedelta(days=7, hours=i)).isoformat(),
                     "channel": "电话客服" if i % 3 else "投诉工单", "business": "手机银行",
                     "customer_segment": "老年客户" if i % 5 == 0 else "个人", "customer_id": f"K{i}",
                     "text": f"验证码收不到，手机银行登录不了，已经第{i}天了"})
    rows.append({"id": "cur-card", "created_at": "2026-11-18T09:00:00", "channel": "在线客服", "business": "信用卡",
                 "customer_id": "C99", "text": "信用卡年费被扣了"})
    return rows


@pytest.fixture
def server(settings: Settings, store: Store, tmp_path: Path):
    Ingestor(store, settings).ingest_file(write_jsonl(tmp_path / "v.jsonl", voices()))
    return create_server(settings)


async def call(server, name: str, **arguments):
    async with create_connected_server_and_client_session(server) as client:
        return await client.call_tool(name, arguments)


async def test_tools_are_listed_read_only_with_descriptions(server) -> None:
    async with create_connected_server_and_client_session(server) as client:
        tools = (await client.list_tools()).tools
    assert {t.name for t in tools} == {"search_voices", "get_voice", "count_voices", "compare_periods",
                                       "sample_voices", "get_corrections"}
    for tool in tools:
        assert tool.annotations.readOnlyHint is True
        assert tool.description and tool.outputSchema


async def test_search_pages_and_filters(server) -> None:
    result = await call(server, "search_voices", week=WEEK, channel="投诉工单", limit=5)
    page = result.structuredContent
    assert not result.isError and page["total"] == 10 and len(page["items"]) == 5
    assert all(item["channel"] == "投诉工单" for item in page["items"])
    second = (await call(server, "search_voices", week=WEEK, channel="投诉工单", limit=5, offset=5)).structuredContent
    assert {i["id"] for i in page["items"]}.isdisjoint({i["id"] for i in second["items"]})
    assert page["next_offset"] == 5 and second["next_offset"] is None
    by_cursor = (await call(server, "search_voices", week=WEEK, channel="投诉工单", limit=5,
                            after=page["next_cursor"])).structuredContent
    assert [i["id"] for i in by_cursor["items"]] == [i["id"] for i in second["items"]]
    bad = await call(server, "search_voices", week=WEEK, after="nonsense")
    assert bad.isError and "cursor" in bad.content[0].text
    words = (await call(server, "search_voices", week=WEEK, query="年费")).structuredContent
    assert [i["id"] for i in words["items"]] == ["cur-card"]


async def test_get_voice_and_unknown_id(server) -> None:
    found = await call(server, "get_voice", voice_id="cur-card")
    assert found.structuredContent["business"] == "信用卡" and found.structuredContent["funnel_tier"] == 2
    missing = await call(server, "get_voice", voice_id="nope")
    assert missing.isError and "no voice" in missing.content[0].text


async def test_counts_group_by_channel_segment_and_day(server) -> None:
    by_channel = (await call(server, "count_voices", group_by="channel", week=WEEK)).structuredContent
    assert by_channel["total"] == 31
    assert {r["key"]: r["count"] for r in by_channel["rows"]} == {"电话客服": 20, "投诉工单": 10, "在线客服": 1}
    by_segment = (await call(server, "count_voices", group_by="segment", week=WEEK)).structuredContent
    assert {r["key"]: r["count"] for r in by_segment["rows"]}["老年客户"] == 6
    by_day = (await call(server, "count_voices", group_by="day", week=WEEK)).structuredContent
    assert [r["key"] for r in by_day["rows"]] == sorted(r["key"] for r in by_day["rows"])


async def test_compare_periods_flags_significant_growth(server) -> None:
    result = (await call(server, "compare_periods", group_by="business", week=WEEK)).structuredContent
    rows = {r["key"]: r for r in result["rows"]}
    assert result["previous_period"]["start"] == "2026-11-09"
    assert rows["手机银行"]["current"] == 30 and rows["手机银行"]["previous"] == 6
    assert rows["手机银行"]["growth"] == 4.0 and rows["手机银行"]["significant"]
    assert rows["信用卡"]["growth"] is None and not rows["信用卡"]["significant"]


async def test_sample_is_deterministic_and_distinct(server) -> None:
    first = (await call(server, "sample_voices", week=WEEK, n=4)).structuredContent["items"]
    second = (await call(server, "sample_voices", week=WEEK, n=4)).structuredContent["items"]
    assert [v["id"] for v in first] == [v["id"] for v in second]
    assert len({v["id"] for v in first}) == 4


@pytest.mark.parametrize(("tool", "arguments", "message"), [
    ("search_voices", {"week": WEEK, "limit": 10_000}, "limit must be between"),
    ("search_voices", {"week": "2026-W99"}, "2026-W99"),
    ("search_voices", {"date_from": "2026-11-20", "date_to": "2026-11-10"}, "before it starts"),
    ("search_voices", {}, "give either a week"),
    ("search_voices", {"week": WEEK, "channel": "飞鸽传书"}, "channel"),
    ("count_voices", {"group_by": "colour", "week": WEEK}, "group_by"),
    ("sample_voices", {"week": WEEK, "n": 0}, "n must be between"),
])
async def test_bad_arguments_are_clear_tool_errors(server, tool, arguments, message) -> None:
    result = await call(server, tool, **arguments)
    assert result.isError and message in result.content[0].text
