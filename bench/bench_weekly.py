"""Benchmark of the weekly run (issue 2/5): offline voices/s, peak memory, LLM calls and tokens.

    python bench/bench_weekly.py --per-week 10000            # offline, cold then warm embedding cache
    python bench/bench_weekly.py --per-week 1000 --llm       # also the LLM engine at the scripted server

Voices/s counts the period's voices over the run's wall time; the run also traces the previous
period (same size) for spike detection. "Cold" embeds everything; "warm" re-runs with the embedding
cache filled, as a weekly run finds it for the previous week.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agents.runner import run_and_write
from voc import demo
from voc.config import Settings
from voc.contracts import Engine
from voc.ingest import Ingestor
from voc.knowledge_base import KnowledgeBase
from voc.periods import parse_week
from voc.storage import Store

WEEK = "2026-W47"


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def prepare(data_dir: Path, per_week: int) -> Settings:
    settings = Settings(data_dir=data_dir)
    path = data_dir / "demo.jsonl"
    data_dir.mkdir(parents=True, exist_ok=True)
    demo.write_jsonl(demo.generate(weeks=2, per_week=per_week, seed=11, end_week=WEEK), path)
    Ingestor(Store(settings.resolved_database_url), settings).ingest_file(path)
    started = time.perf_counter()
    KnowledgeBase(settings).load()
    print(f"knowledge base loaded in {time.perf_counter() - started:.1f} s", flush=True)
    return settings


def cached_vectors(settings: Settings) -> int:
    path = settings.embedding_cache_path
    if not path.exists():
        return 0
    with sqlite3.connect(path) as connection:
        return int(connection.execute("SELECT count(*) FROM vectors").fetchone()[0])


def timed_run(settings: Settings, label: str, engine: Engine = Engine.OFFLINE) -> dict[str, Any]:
    vectors_before = cached_vectors(settings)
    started = time.perf_counter()
    _out, summary = asyncio.run(run_and_write(settings, period=parse_week(WEEK), engine=engine))
    wall = time.perf_counter() - started
    counts = summary.counts
    row = {"run": label, "voices": counts.voices, "previous_voices": counts.previous_voices,
           "wall_s": round(wall, 1), "voices_per_s": round(counts.voices / wall, 1), "timings": summary.timings,
           "clusters": counts.clusters, "outlier_rate": summary.outlier_rate, "proposals": counts.proposals,
           "peak_rss_mb": peak_rss_mb(), "llm": summary.llm,
           "texts_embedded": cached_vectors(settings) - vectors_before}
    print(json.dumps(row, ensure_ascii=False), flush=True)
    return row


def llm_costs(settings: Settings) -> dict[str, object]:
    from tests.fake_openai import graph_model, start_fake_llm

    fake, stop = start_fake_llm()
    fake.responder, fake.estimate_tokens = graph_model, True
    try:
        llm_settings = settings.model_copy(update={"llm_base_url": fake.base_url, "llm_model": "scripted"})
        row = timed_run(llm_settings, "llm (scripted server)", engine=Engine.LLM)
    finally:
        stop()
    llm = row["llm"]
    per_thousand = 1000 / max(int(row["voices"]), 1)
    costs = {key: round(llm.get(key, 0) * per_thousand, 1)
             for key in ("calls", "prompt_tokens", "completion_tokens")}
    print("LLM per 1,000 voices:", json.dumps(costs), "(tokens estimated at 1.5 characters per token)", flush=True)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-week", type=int, default=10000)
    parser.add_argument("--llm", action="store_true", help="also run the LLM engine at the scripted server")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="voc-bench-weekly-"))
    settings = prepare(data_dir, args.per_week)
    rows = [timed_run(settings, "offline cold"), timed_run(settings, "offline warm")]
    if args.llm:
        rows.append({"llm_per_1000": llm_costs(settings)})
    print(json.dumps({"per_week": args.per_week, "rows": rows}, ensure_ascii=False))


if __name__ == "__main__":
    main()
