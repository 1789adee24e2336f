from datetime import datetime, timedelta
from pathlib import Path

import pytest
from mcp.shared.memory import create_connected_server_and_client_session

from mcp_servers.tickets import create_server
from tests.conftest import write_jsonl
from voc.config import Settings
from voc.ingest import Ingestor
from voc.storage import Store, VoiceRow

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
                            cursor=page["next_cursor"])).structuredContent
    assert [i["id"] for i in by_cursor["items"]] == [i["id"] for i in second["items"]]
    bad = await call(server, "search_voices", week=WEEK, cursor="nonsense")
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
    first = (await call(server, "sample_voices", week=WEEK, limit=4)).structuredContent["items"]
    second = (await call(server, "sample_voices", week=WEEK, limit=4)).structuredContent["items"]
    assert [v["id"] for v in first] == [v["id"] for v in second]
    assert len({v["id"] for v in first}) == 4


@pytest.mark.parametrize(("tool", "arguments", "message"), [
    ("search_voices", {"week": WEEK, "limit": 10_000}, "limit: Input should be less than or equal to 200"),
    ("search_voices", {"week": WEEK, "offset": -1}, "offset: Input should be greater than or equal to 0"),
    ("search_voices", {"week": "2026-W99"}, "2026-W99"),
    ("search_voices", {"date_from": "2026-11-20", "date_to": "2026-11-10"}, "早于开始日"),
    ("search_voices", {}, "give either week"),
    ("search_voices", {"date_from": "2026-11-20"}, "both date_from and date_to"),
    ("search_voices", {"week": WEEK, "channel": "飞鸽传书"}, "channel"),
    ("count_voices", {"group_by": "colour", "week": WEEK}, "group_by"),
    ("sample_voices", {"week": WEEK, "limit": 0}, "limit: Input should be greater than or equal to 1"),
    ("search_voices", {"week": WEEK, "query": "x" * 201}, "query: String should have at most 200 characters"),
    ("get_voice", {}, "voice_id is required"),
    ("get_corrections", {"voice_ids": ["v"] * 501}, "voice_ids: List should have at most 500 items"),
])
async def test_bad_arguments_are_clear_tool_errors(server, tool, arguments, message) -> None:
    result = await call(server, tool, **arguments)
    assert result.isError and message in result.content[0].text


# ---------------------------------------------------------------- conventions (issue 2/6)

async def test_unknown_arguments_are_refused_not_ignored(server) -> None:
    """A misspelt filter must not silently count everything."""
    result = await call(server, "count_voices", group_by="channel", week=WEEK, sentimnet="负面")
    assert result.isError
    text = result.content[0].text
    assert "unknown argument sentimnet" in text and "sentiment" in text.split("accepted:")[1]
    search = await call(server, "search_voices", week=WEEK, top_n=3)
    assert search.isError and "unknown argument top_n" in search.content[0].text


async def test_former_argument_names_still_work(server) -> None:
    """`n` and `after` were renamed `limit` and `cursor`; old callers keep working, the schema shows
    only the new names."""
    async with create_connected_server_and_client_session(server) as client:
        schemas = {t.name: t.inputSchema["properties"] for t in (await client.list_tools()).tools}
        assert "n" not in schemas["sample_voices"] and "after" not in schemas["search_voices"]
        sample = await client.call_tool("sample_voices", {"week": WEEK, "n": 2})
        assert len(sample.structuredContent["items"]) == 2
        page = (await client.call_tool("search_voices", {"week": WEEK, "limit": 5})).structuredContent
        after = await client.call_tool("search_voices", {"week": WEEK, "limit": 5, "after": page["next_cursor"]})
        cursor = await client.call_tool("search_voices", {"week": WEEK, "limit": 5, "cursor": page["next_cursor"]})
        assert after.structuredContent["items"] == cursor.structuredContent["items"] != page["items"]


@pytest.fixture
def worded(settings: Settings, store: Store, tmp_path: Path):
    rows = [{"id": f"w{i}", "created_at": f"2026-11-18T1{i}:00:00", "channel": "投诉工单", "business": "信用卡",
             "customer_id": f"W{i}", "text": text} for i, text in enumerate([
                 "信用卡年费被乱扣，我要投诉", "我要投诉你们的信用卡中心，额度说降就降", "投诉：信用卡分期手续费不透明",
                 "信用卡还款日提醒没收到", "投诉网点排队太久", "ATM吞卡了要投诉"])]
    Ingestor(store, settings).ingest_file(write_jsonl(tmp_path / "w.jsonl", rows))
    return create_server(settings)


async def test_keyword_search_matches_words_not_one_substring(worded) -> None:
    joined = (await call(worded, "search_voices", week=WEEK, query="信用卡投诉")).structuredContent
    spaced = (await call(worded, "search_voices", week=WEEK, query="信用卡 投诉")).structuredContent
    assert joined["total"] == spaced["total"] == 3
    assert [v["id"] for v in joined["items"]] == [v["id"] for v in spaced["items"]] == ["w0", "w1", "w2"]
    counted = (await call(worded, "count_voices", group_by="business", week=WEEK, query="投诉信用卡")).structuredContent
    assert counted["total"] == 3
    filler = (await call(worded, "search_voices", week=WEEK, query="信用卡还款的问题")).structuredContent
    assert [v["id"] for v in filler["items"]] == ["w3"]
    latin = (await call(worded, "search_voices", week=WEEK, query="atm吞卡")).structuredContent
    assert [v["id"] for v in latin["items"]] == ["w5"]


def test_query_terms() -> None:
    from voc.text_search import query_terms

    assert query_terms("信用卡投诉") == ("信用卡", "投诉")
    assert query_terms("信用卡，投诉！信用卡") == ("信用卡", "投诉")
    assert query_terms("的问题") == ("的", "问题")  # nothing but filler: kept rather than matching everything
    assert query_terms("") == ()


async def test_metadata_is_one_level_deep(settings: Settings, store: Store, tmp_path: Path) -> None:
    rows = [{"id": "m1", "created_at": "2026-11-18T10:00:00", "channel": "电话客服", "text": "转账一直在处理中",
             "metadata": {"工单号": "T-1"}, "坐席组": "A组"},
            {"id": "m2", "created_at": "2026-11-18T11:00:00", "channel": "电话客服", "text": "转账失败",
             "metadata": "客户要求回电"}]
    Ingestor(store, settings).ingest_file(write_jsonl(tmp_path / "m.jsonl", rows))
    with store.session() as session:  # a voice stored before ingestion mapped the metadata column
        session.get(VoiceRow, "m1").meta = {"metadata": {"工单号": "T-1", "渠道": "旧"}, "渠道": "新"}
    server = create_server(settings)
    first = (await call(server, "get_voice", voice_id="m1")).structuredContent["metadata"]
    assert first == {"工单号": "T-1", "渠道": "新"}
    second = (await call(server, "get_voice", voice_id="m2")).structuredContent["metadata"]
    assert "metadata" not in second and "客户要求回电" in second.values()
    page = (await call(server, "search_voices", week=WEEK)).structuredContent
    assert all("metadata" not in v["metadata"] for v in page["items"])


async def test_a_data_directory_without_data_is_an_error(tmp_path: Path) -> None:
    nowhere = tmp_path / "cwd" / ".voc"
    server = create_server(Settings(data_dir=nowhere))
    result = await call(server, "count_voices", group_by="channel", week=WEEK)
    assert result.isError
    text = result.content[0].text
    assert str(nowhere) in text and "VOC_DATA_DIR" in text and "voc.db" in text
    assert not nowhere.exists()  # nothing created in the client's working directory


async def test_unexpected_errors_are_plain(server, monkeypatch: pytest.MonkeyPatch) -> None:
    huge = await call(server, "search_voices", week=WEEK, offset=10**30)
    assert huge.isError and "SQLite" not in huge.content[0].text and "Python int" not in huge.content[0].text
    assert "offset" in huge.content[0].text

    def broken(*_args, **_kwargs):
        raise RuntimeError("sqlite3.OperationalError: disk I/O error at /secret/path")

    monkeypatch.setattr("mcp_servers.tickets.count_voices", broken)
    result = await call(server, "count_voices", group_by="channel", week=WEEK)
    assert result.isError and "内部错误" in result.content[0].text
    assert "secret" not in result.content[0].text and "sqlite3" not in result.content[0].text


def plant_run(settings: Settings, labels: dict[str, dict[str, str]], week: str = WEEK) -> str:
    """A weekly run's outputs as `voc run` writes them (through the output contract)."""
    from tests.factories import cluster_dict, summary_dict
    from voc.contracts import Cluster, RunOutputs, RunSummary, VoiceResult

    run_dir = settings.runs_dir / f"{week}-offline-test"
    voices = [VoiceResult.model_validate(
        {"id": voice_id, "owner_department": "信息科技部", "owner_confidence": 0.9, "dimension": "机",
         "tag": "系统设备>登录认证>验证码收不到", "sentiment": "中性", "intensity": 1, "cluster_id": None,
         "needs_review": False, "engine": "offline"} | given) for voice_id, given in labels.items()]
    clusters = [Cluster.model_validate(cluster_dict(cluster_id=c, priority=p)) for c, p in (("C001", "P1"),
                                                                                            ("C002", "P3"))]
    summary = RunSummary.model_validate(summary_dict(run_dir.name, "2026-11-16", "2026-11-22", week))
    RunOutputs(summary=summary, voices=voices, clusters=clusters, proposals=[]).write(run_dir)
    return run_dir.name


async def test_label_filters_read_the_latest_run(server, settings: Settings) -> None:
    negative = {f"cur-{i:02d}": {"sentiment": "负面", "cluster_id": "C001"} for i in range(0, 30, 3)}
    labels = {f"cur-{i:02d}": {} for i in range(30)} | negative | {
        "cur-card": {"sentiment": "负面", "owner_department": "信用卡中心", "dimension": "物",
                     "tag": "产品设计>收费定价>年费争议", "cluster_id": "C002"}}
    run_id = plant_run(settings, labels)

    page = (await call(server, "search_voices", week=WEEK, sentiment="负面", limit=50)).structuredContent
    assert page["total"] == 11 and page["run_id"] == run_id
    assert {v["id"] for v in page["items"]} == set(negative) | {"cur-card"}
    by_owner = (await call(server, "count_voices", group_by="business", week=WEEK,
                           owner_department="信用卡中心")).structuredContent
    assert by_owner["rows"] == [{"key": "信用卡", "count": 1, "customers": 1}] and by_owner["run_id"] == run_id
    card = {"cur-card"}
    cases = [({"tag": "产品设计"}, card), ({"tag": "产品设计>收费定价>年费争议"}, card), ({"tag": "产品"}, set()),
             ({"dimension": "物"}, card), ({"cluster_id": "C002"}, card), ({"priority": "P1"}, set(negative)),
             ({"priority": "P1", "channel": "投诉工单"}, set(negative)), ({"sentiment": "负面", "query": "年费"}, card)]
    for arguments, expected in cases:
        found = (await call(server, "search_voices", week=WEEK, limit=50, **arguments)).structuredContent
        assert {v["id"] for v in found["items"]} == expected, arguments
    counted = (await call(server, "count_voices", group_by="channel", week=WEEK, sentiment="负面")).structuredContent
    assert counted["total"] == 11

    no_run = await call(server, "count_voices", group_by="channel", week="2026-W46", sentiment="负面")
    assert no_run.isError and "no weekly run" in no_run.content[0].text
    bad = await call(server, "search_voices", week=WEEK, sentiment="bad")
    assert bad.isError and "sentiment" in bad.content[0].text


async def test_tickets_prompts(server, settings: Settings) -> None:
    plant_run(settings, {})
    async with create_connected_server_and_client_session(server) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        assert set(prompts) == {"customer_quotes", "segment_change"}
        assert all(p.title and p.description and all(a.description for a in p.arguments) for p in prompts.values())
        assert {a.name for a in prompts["customer_quotes"].arguments if a.required} == {"problem"}
        quotes = await client.get_prompt("customer_quotes", {"business": "手机银行", "problem": "登录 验证码"})
        text = quotes.messages[0].content.text
        assert "search_voices" in text and WEEK in text and "手机银行" in text and "登录 验证码" in text
        change = await client.get_prompt("segment_change", {"segment": "老年客户", "week": "2026-W46"})
        assert "compare_periods" in change.messages[0].content.text and "2026-W46" in change.messages[0].content.text


@pytest.mark.postgres
async def test_tokenised_search_and_label_filters_on_postgres(pg_settings: Settings, tmp_path: Path) -> None:
    store = Store(pg_settings.resolved_database_url)
    Ingestor(store, pg_settings).ingest_file(write_jsonl(tmp_path / "v.jsonl", voices()))
    server = create_server(pg_settings)
    plant_run(pg_settings, {"cur-card": {"sentiment": "负面"}, "cur-01": {"sentiment": "负面"}})
    found = (await call(server, "search_voices", week=WEEK, query="登录验证码", limit=50)).structuredContent
    assert found["total"] == 30
    card = (await call(server, "search_voices", week=WEEK, query="年费信用卡")).structuredContent
    assert [v["id"] for v in card["items"]] == ["cur-card"]
    negative = (await call(server, "count_voices", group_by="business", week=WEEK, sentiment="负面")).structuredContent
    assert {r["key"]: r["count"] for r in negative["rows"]} == {"手机银行": 1, "信用卡": 1}
