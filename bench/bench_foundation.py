"""Foundation benchmark: ingestion rows/s, search/count latency over 1M voices, embedding voices/s.

Run from the repository root:

    .venv/bin/python bench/bench_foundation.py            # full: 100K ingest, 1M search, 2K embed
    .venv/bin/python bench/bench_foundation.py --quick    # 10K / 100K / 200, a fast check

Prints a plain table and, last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import resource
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, insert, select

from voc import demo
from voc.config import Settings
from voc.embeddings import embed_passages
from voc.ingest import ColumnMap, Ingestor, RowError, text_key, to_voice
from voc.models import Business, Channel
from voc.periods import parse_week
from voc.storage import Store, VoiceRow, engine_for
from voc.voice_queries import GroupBy, VoiceFilter, compare_periods, count_voices, search_voices

BUILD_BATCH = 5000
END_WEEK = "2026-W47"  # fixed so that every run generates the same voices
SEARCH_TERMS = ("验证码", "排队", "年费", "转账 失败", "闪退", "利率")
COUNT_GROUPS = (GroupBy.CHANNEL, GroupBy.BUSINESS, GroupBy.DAY, GroupBy.SEGMENT, GroupBy.FUNNEL_TIER)
NOTES = """
Notes: search_voices / count_voices / compare_periods time the domain functions in voc.voice_queries
that the MCP tools wrap; the MCP layer (JSON-RPC framing, pydantic serialisation) adds a few ms per
call on top. The search store is bulk-inserted with Ingestor._row's row shape but WITHOUT masking or
duplicate linking (that cost is what the ingest figure measures)."""
FULL = {"ingest": 100_000, "search": 1_000_000, "embed": 2_000}
QUICK = {"ingest": 10_000, "search": 100_000, "embed": 200}


# ---------------------------------------------------------------- helpers

def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def split_rows(total: int, weeks: int) -> tuple[int, int]:
    """(weeks, per_week) whose product is total; fewer weeks when total is small."""
    weeks = max(1, min(weeks, total // 1000 or 1))
    return weeks, max(1, total // weeks)


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def say(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


# ---------------------------------------------------------------- 1. ingestion

def bench_ingest(rows: int) -> dict[str, Any]:
    weeks, per_week = split_rows(rows, 10)
    with tempfile.TemporaryDirectory(prefix="voc-bench-ingest-") as tmp:
        source = Path(tmp) / "voices.jsonl"
        say(f"ingest: generating {weeks} weeks x {per_week} demo voices → {source}")
        raw_rows = demo.generate(weeks=weeks, per_week=per_week, seed=1, end_week=END_WEEK)
        written = demo.write_jsonl(raw_rows, source)
        settings = Settings(data_dir=Path(tmp) / "data")
        settings.ensure_dirs()
        store = Store(settings.resolved_database_url)
        say(f"ingest: ingesting {written} rows (masking + duplicate linking on)")
        start = time.perf_counter()
        report = Ingestor(store, settings).ingest_file(source)
        seconds = time.perf_counter() - start
        stored_rows = stored_count(store)
        file_mb = source.stat().st_size / 2**20
        store.engine.dispose()
    return {"rows": report.rows, "stored": report.stored, "duplicate": report.duplicate,
            "rejected": report.rejected, "in_db": stored_rows, "balanced": report.balanced,
            "seconds": round(seconds, 2), "rows_per_s": round(report.rows / seconds, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1), "file_mb": round(file_mb, 1)}


# ---------------------------------------------------------------- 2. search / count latency

def voice_rows(raw_rows: Iterable[dict[str, Any]], ingestor: Ingestor, now: datetime) -> Iterator[dict]:
    """Raw demo rows → VoiceRow dicts of Ingestor._row's shape (no masking, no duplicate linking)."""
    source = Path("bench-demo.jsonl")
    for number, raw in enumerate(raw_rows, start=1):
        try:
            voice = to_voice(ingestor.column_map.apply(raw), ingestor.settings)
        except RowError:
            continue
        yield ingestor._row(voice, text_key(voice.text), None, source, number, now)


def build_search_db(path: Path, rows: int) -> None:
    weeks, per_week = split_rows(rows, 50)
    building = path.with_suffix(".building.db")
    settings = Settings(data_dir=path.parent, allow_unmasked_pii=True)
    url = f"sqlite:///{building}"
    store = Store(url)
    ingestor = Ingestor(store, settings)
    say(f"search: building {weeks} weeks x {per_week} voices into {building} (bulk insert, "
        "masking and duplicate detection skipped)")
    start, done = time.perf_counter(), 0
    raw = demo.generate(weeks=weeks, per_week=per_week, seed=2, end_week=END_WEEK)
    # render_nulls keeps every row's key set equal, so SQLAlchemy sends one executemany per batch
    # instead of splitting it wherever customer_id / business / duplicate_of switch to NULL.
    statement = insert(VoiceRow).prefix_with("OR IGNORE").execution_options(render_nulls=True)
    for batch in batched(voice_rows(raw, ingestor, datetime.now(UTC)), BUILD_BATCH):
        with store.session() as session:
            session.execute(statement, batch)
        done += len(batch)
        if done % 100_000 < BUILD_BATCH:
            say(f"search: {done} rows inserted ({time.perf_counter() - start:.0f}s)")
    store.engine.dispose()
    engine_for.cache_clear()
    building.rename(path)
    say(f"search: built {done} rows in {time.perf_counter() - start:.0f}s")


def cache_path(cache_dir: Path, rows: int) -> Path:
    """Keyed by size and by the generator's code and data (voc/demo/*.py, *.yaml), so an edited
    generator is never served stale."""
    package = Path(demo.__file__).parent
    digest = hashlib.sha1(usedforsecurity=False)
    for path in sorted(p for p in package.iterdir() if p.suffix in (".py", ".yaml")):
        digest.update(path.name.encode() + path.read_bytes())
    return cache_dir / f"voices-{rows}-{digest.hexdigest()[:8]}.db"


def search_store(cache_dir: Path, rows: int, rebuild: bool) -> tuple[Store, float]:
    path = cache_path(cache_dir, rows)
    build_seconds = 0.0
    if rebuild or not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        for stale in cache_dir.glob(f"voices-{rows}-*.db*"):  # older generator versions of this size
            stale.unlink()
        start = time.perf_counter()
        build_search_db(path, rows)
        build_seconds = time.perf_counter() - start
    else:
        say(f"search: reusing cached {path}")
    return Store(f"sqlite:///{path}"), build_seconds


def stored_weeks(store: Store) -> list[str]:
    with store.session() as session:
        return sorted(session.scalars(select(VoiceRow.iso_week).distinct()))


def search_call(store: Store, weeks: list[str], rng: random.Random) -> Callable[[], Any]:
    period = parse_week(rng.choice(weeks))
    where = VoiceFilter.for_period(
        period,
        channel=rng.choice([None, *Channel]) if rng.random() < 0.6 else None,
        business=rng.choice([None, *Business]) if rng.random() < 0.6 else None,
        query=rng.choice(SEARCH_TERMS) if rng.random() < 0.5 else None)
    return lambda: search_voices(store, where, limit=50)


def count_call(store: Store, weeks: list[str], rng: random.Random) -> Callable[[], Any]:
    where = VoiceFilter.for_period(parse_week(rng.choice(weeks)))
    group = rng.choice(COUNT_GROUPS)
    return lambda: count_voices(store, group, where)


def compare_call(store: Store, weeks: list[str], rng: random.Random) -> Callable[[], Any]:
    period = parse_week(rng.choice(weeks[1:] or weeks))
    return lambda: compare_periods(store, GroupBy.CHANNEL, period)


def latency(calls: list[Callable[[], Any]]) -> dict[str, float]:
    for call in calls[:3]:  # warm the connection pool, statement cache and page cache
        call()
    times = []
    for call in calls:
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    ms = np.asarray(times)
    return {"n": len(times), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "mean_ms": round(float(ms.mean()), 2),
            "max_ms": round(float(ms.max()), 2)}


def stored_count(store: Store) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(VoiceRow)) or 0)


def bench_search(rows: int, queries: int, cache_dir: Path, rebuild: bool) -> dict[str, Any]:
    store, build_seconds = search_store(cache_dir, rows, rebuild)
    total, weeks = stored_count(store), stored_weeks(store)
    say(f"search: {total} voices over {len(weeks)} weeks; {queries} queries per tool")
    rng = random.Random(7)
    db = Path(store.url.removeprefix("sqlite:///"))
    result: dict[str, Any] = {"voices": total, "weeks": len(weeks), "build_seconds": round(build_seconds, 1),
                              "db": db.name, "db_mb": round(db.stat().st_size / 2**20)}
    for name, make in (("search_voices", search_call), ("count_voices", count_call),
                       ("compare_periods", compare_call)):
        result[name] = latency([make(store, weeks, rng) for _ in range(queries)])
        say(f"search: {name} {result[name]}")
    store.engine.dispose()
    return result


# ---------------------------------------------------------------- 3. embeddings

def bench_embed(count: int, batch_size: int = 64) -> dict[str, Any]:
    column_map = ColumnMap.load()
    weeks, per_week = split_rows(count, 1)
    raw_rows = demo.generate(weeks=weeks, per_week=per_week, seed=3, end_week=END_WEEK)
    texts = [str(column_map.apply(raw)["text"]) for raw in raw_rows][:count]
    start = time.perf_counter()
    embed_passages(texts[:8], batch_size=batch_size)  # loads the model
    load_seconds = time.perf_counter() - start
    say(f"embed: model loaded in {load_seconds:.1f}s; embedding {len(texts)} voices, batch {batch_size}")
    start = time.perf_counter()
    vectors = embed_passages(texts, batch_size=batch_size)
    seconds = time.perf_counter() - start
    return {"voices": len(texts), "batch": batch_size, "dim": int(vectors.shape[1]),
            "mean_chars": round(sum(map(len, texts)) / len(texts), 1), "load_seconds": round(load_seconds, 2),
            "seconds": round(seconds, 2), "voices_per_s": round(len(texts) / seconds, 1)}


# ---------------------------------------------------------------- report

def table(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    lines: list[tuple[str, str, str]] = []
    if ing := results.get("ingest"):
        scope = f"{ing['rows']:,} rows JSONL → fresh SQLite"
        lines += [("ingest", "rows/s", f"{ing['rows_per_s']:,.0f}  ({scope}, {ing['seconds']}s)"),
                  ("ingest", "stored / duplicate / rejected",
                   f"{ing['stored']:,} / {ing['duplicate']:,} / {ing['rejected']:,}"),
                  ("ingest", "peak RSS", f"{ing['peak_rss_mb']:,.0f} MB")]
    if srch := results.get("search"):
        for tool in ("search_voices", "count_voices", "compare_periods"):
            t = srch[tool]
            lines.append((tool, f"p50 / p99 / mean ms (n={t['n']})",
                          f"{t['p50_ms']} / {t['p99_ms']} / {t['mean_ms']}  over {srch['voices']:,} voices"))
    if emb := results.get("embed"):
        lines.append(("embed", "voices/s", f"{emb['voices_per_s']:,.1f}  ({emb['voices']:,} voices, "
                                             f"batch {emb['batch']}, {emb['seconds']}s)"))
    return lines


def print_report(results: dict[str, Any]) -> None:
    rows = table(results)
    widths = [max(len(r[i]) for r in rows) for i in range(2)] if rows else [0, 0]
    print()
    print(f"{'benchmark':<{widths[0]}}  {'figure':<{widths[1]}}  value")
    print("-" * (widths[0] + widths[1] + 40))
    for name, figure, value in rows:
        print(f"{name:<{widths[0]}}  {figure:<{widths[1]}}  {value}")
    print(NOTES)
    print(json.dumps(results, ensure_ascii=False))


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine()}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-ingest", type=int, default=None, help="rows to ingest (default 100000)")
    parser.add_argument("--rows-search", type=int, default=None, help="voices in the search store (1M)")
    parser.add_argument("--embed", type=int, default=None, help="voices to embed (default 2000)")
    parser.add_argument("--queries", type=int, default=200, help="timed calls per query tool (default 200)")
    parser.add_argument("--quick", action="store_true", help="10K ingest / 100K search / 200 embed")
    parser.add_argument("--only", choices=("ingest", "search", "embed"), help="run one benchmark")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/voc-bench"),
                        help="where the built search store is cached (default /tmp/voc-bench)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached search store")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    args.rows_ingest = args.rows_ingest or sizes["ingest"]
    args.rows_search = args.rows_search or sizes["search"]
    args.embed = args.embed or sizes["embed"]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results: dict[str, Any] = {"machine": machine()}
    if args.only in (None, "ingest"):
        results["ingest"] = bench_ingest(args.rows_ingest)
    if args.only in (None, "search"):
        results["search"] = bench_search(args.rows_search, args.queries, args.cache_dir, args.rebuild)
    if args.only in (None, "embed"):
        results["embed"] = bench_embed(args.embed)
    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print_report(results)


if __name__ == "__main__":
    main()
