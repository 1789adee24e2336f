"""The same store, ingestion and queries against a real PostgreSQL server."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import write_jsonl
from voc.config import Settings
from voc.ingest import Ingestor
from voc.periods import parse_week
from voc.storage import Store
from voc.voice_queries import GroupBy, VoiceFilter, compare_periods, count_voices, search_voices

pytestmark = pytest.mark.postgres


def test_ingest_and_query_on_postgres(pg_settings: Settings, tmp_path: Path) -> None:
    store = Store(pg_settings.resolved_database_url)
    assert store.engine.dialect.name == "postgresql"
    rows = [
        {"id": "p1", "created_at": "2026-11-10T09:00:00", "channel": "电话客服", "business": "信用卡",
         "customer_id": "13800000001", "text": "年费扣了两次"},
        {"id": "p2", "created_at": "2026-11-17T23:30:00", "channel": "电话客服", "business": "信用卡",
         "customer_id": "13800000002", "text": "年费又扣了，电话13800000002"},
        {"id": "p3", "created_at": "2026-11-18T09:00:00", "channel": "在线客服", "business": "信用卡",
         "customer_id": "13800000002", "text": "年费又扣了，电话13800000002！"},
        {"id": "p4", "created_at": "2026-11-18T10:00:00", "channel": "投诉工单", "business": "手机银行",
         "customer_id": "13800000003", "text": "APP闪退"},
        {"id": "bad", "created_at": "yesterday", "channel": "电话客服", "text": "x"},
    ]
    path = write_jsonl(tmp_path / "pg.jsonl", rows)
    report = Ingestor(store, pg_settings).ingest_file(path)
    assert (report.stored, report.linked, report.rejected) == (3, 1, 1)
    assert Ingestor(store, pg_settings).ingest_file(path).already_stored == 4

    assert store.get_voice("p2").created_at == datetime(2026, 11, 17, 15, 30, tzinfo=UTC)
    assert store.get_voice("p2").text == "年费又扣了，电话[手机号]"
    week = parse_week("2026-W47")
    counts = count_voices(store, GroupBy.CHANNEL, VoiceFilter.for_period(week))
    assert {r.key: r.count for r in counts.rows} == {"电话客服": 1, "投诉工单": 1}
    comparison = compare_periods(store, GroupBy.BUSINESS, week)
    assert {r.key: (r.current, r.previous) for r in comparison.rows} == {"信用卡": (1, 1), "手机银行": (1, 0)}
    page = search_voices(store, VoiceFilter.for_period(week, query="年费", include_duplicates=True))
    assert [v.id for v in page.items] == ["p2", "p3"] and page.items[1].duplicate_of == "p2"


def test_weekly_run_checkpoints_in_postgres_and_resumes(pg_settings: Settings, loaded_kb, tmp_path: Path) -> None:
    import asyncio

    from agents.runner import run_graph

    # The knowledge vectors come from the session's loaded knowledge base; voices and checkpoints live in Postgres.
    settings = pg_settings.model_copy(update={"data_dir": loaded_kb.settings.data_dir})
    rows = [{"id": f"pg-{i}", "created_at": f"2026-11-{16 + i % 5}T10:00:00", "channel": "电话客服",
             "business": "手机银行", "customer_id": f"c{i}", "text": f"手机银行验证码收不到，登录不了，第{i}次了！"}
            for i in range(6)]
    Ingestor(Store(settings.resolved_database_url), settings).ingest_file(write_jsonl(tmp_path / "v.jsonl", rows))

    def kill_at_tracing(agent: str, _advance: int, _total: int | None) -> None:
        if agent == "溯源":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(run_graph(settings, period=parse_week("2026-W47"), run_id="pg-run", progress=kill_at_tracing))
    engine = create_engine(settings.resolved_database_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM checkpoints WHERE thread_id = 'pg-run'")).scalar()
    engine.dispose()
    state = asyncio.run(run_graph(settings, run_id="pg-run", resume=True))
    assert len(state["traces"]) == 6 and state["clusters"]
