"""Benchmark of the LLM engine as a cascade (issue 5/6, item 5): calls and prompt tokens per 1,000 voices.

    python bench/bench_llm_cascade.py                      # ~1,000 demo voices a week, both runs
    python bench/bench_llm_cascade.py --per-week 200       # a quick check
    python bench/bench_llm_cascade.py --data-dir DIR       # DIR prepared by an earlier call: reused

Demo data as `voc demo-data` writes it (two weeks ending 2026-W47) is ingested and the knowledge base
loaded; then the LLM engine runs the week twice against the scripted local server
(`tests/fake_openai.py`, no model, no network):

- **all voices**: review and tag thresholds at 1.0, so every voice the offline engine is not certain
  of (confidence below 1) goes to the model for 归因 and for 溯源, as every voice did before the cascade;
- **cascade**: the settings' thresholds (`VOC_REVIEW_THRESHOLD`, `VOC_LLM_TAG_THRESHOLD`), so only
  the voices the offline engine is unsure of go to the model.

Both runs' prompts carry only the candidates of their voices. Calls are counted exactly, per agent
from the requests the server saw; tokens are *estimated* at 1.5 characters per token, because no
real tokenizer answers here. The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agents.runner import run_and_write
from bench.bench_weekly import WEEK, prepare
from tests.fake_openai import FakeLLM, FakeRequest, graph_model, start_fake_llm
from voc.config import Settings
from voc.contracts import Engine
from voc.periods import parse_week

GOAL = {"calls": 50, "prompt_tokens": 200_000}


def agent_of(request: FakeRequest) -> str:
    """Which agent sent a request, from its data blocks."""
    blocks = request.blocks
    if "proposals" in blocks or "draft" in blocks:  # "draft", "cluster": one a request, before batching
        return "application"
    if "clusters" in blocks or "cluster" in blocks:
        return "analysis"
    voices = request.voices
    return "attribution" if voices and "candidate_owners" in voices[0] else "tracing"


def by_agent(requests: list[FakeRequest]) -> dict[str, dict[str, int]]:
    """Calls and estimated prompt tokens per agent (the server's estimate: 1.5 characters a token)."""
    totals: dict[str, dict[str, int]] = {}
    for request in requests:
        entry = totals.setdefault(agent_of(request), {"calls": 0, "prompt_tokens": 0})
        entry["calls"] += 1
        entry["prompt_tokens"] += math.ceil(len(request.system + request.user) / 1.5)
    return dict(sorted(totals.items()))


def llm_run(settings: Settings, label: str, fake: FakeLLM, **thresholds: float) -> dict[str, Any]:
    fake.requests.clear()
    run_settings = settings.model_copy(update={"llm_base_url": fake.base_url, "llm_model": "scripted", **thresholds})
    started = time.perf_counter()
    _out, summary = asyncio.run(run_and_write(run_settings, period=parse_week(WEEK), engine=Engine.LLM))
    voices = summary.counts.voices
    llm = summary.llm
    per_thousand = 1000 / max(voices, 1)
    row = {"run": label, "voices": voices, "wall_s": round(time.perf_counter() - started, 1),
           "thresholds": {"review": run_settings.review_threshold,
                          "tag": getattr(run_settings, "llm_tag_threshold", None)},  # None: before the cascade
           "calls": llm["calls"], "prompt_tokens": llm["prompt_tokens"], "voices_sent": llm.get("voices", 0),
           "fallbacks": llm.get("fallbacks", 0), "by_agent": by_agent(fake.requests),
           "per_1000": {key: round(llm[key] * per_thousand, 1)
                        for key in ("calls", "prompt_tokens", "completion_tokens")}}
    print(json.dumps(row, ensure_ascii=False), flush=True)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    """Per 1,000 voices: calls and prompt tokens, in all and per agent."""
    agents = ("attribution", "tracing", "analysis", "application")
    lines = ["| run | sent (归因+溯源) | calls | prompt tokens | " + " | ".join(agents) + " |",
             "|---|---|---|---|" + "---|" * len(agents)]
    for row in rows:
        scale = 1000 / max(row["voices"], 1)
        cells = [f"{row['by_agent'].get(a, {}).get('calls', 0) * scale:,.0f} / "
                 f"{row['by_agent'].get(a, {}).get('prompt_tokens', 0) * scale / 1000:,.0f}K" for a in agents]
        per = row["per_1000"]
        lines.append(f"| {row['run']} | {row['voices_sent'] * scale:,.0f} | {per['calls']:,.0f} | "
                     f"{per['prompt_tokens']:,.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-week", type=int, default=1000, help="demo voices per week (two weeks)")
    parser.add_argument("--runs", default="all,cascade",
                        help="which runs, comma-separated: all, cascade, cascade-tag (the tag threshold below)")
    parser.add_argument("--tag-threshold", type=float, default=0.5, help="the cascade-tag run's tag threshold")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="default: a new temp dir; one holding voc.db is reused as is (--per-week ignored)")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="voc-bench-cascade-"))
    reuse = (data_dir / "voc.db").exists()  # prepared by an earlier call: skip generating, ingesting, loading
    settings = Settings(data_dir=data_dir) if reuse else prepare(data_dir, args.per_week)
    fake, stop = start_fake_llm()
    fake.responder, fake.estimate_tokens = graph_model, True
    runs = {"all": ("all voices", {"review_threshold": 1.0, "llm_tag_threshold": 1.0}),
            "cascade": ("cascade", {}),
            "cascade-tag": (f"cascade, tag threshold {args.tag_threshold}", {"llm_tag_threshold": args.tag_threshold})}
    try:
        rows = [llm_run(settings, runs[name][0], fake, **runs[name][1]) for name in args.runs.split(",")]
    finally:
        stop()
    cascade = next((r for r in rows if r["run"] == "cascade"), rows[-1])["per_1000"]
    met = all(cascade[key] <= limit for key, limit in GOAL.items())
    print("per 1,000 voices; per agent: calls / prompt tokens")
    print(table(rows))
    print(f"goal ≤ {GOAL['calls']} calls and ≤ {GOAL['prompt_tokens']:,} prompt tokens per 1,000 voices:",
          "met" if met else "NOT met")
    print(json.dumps({"per_week": args.per_week, "rows": rows, "goal": GOAL, "goal_met": met}, ensure_ascii=False))


if __name__ == "__main__":
    main()
