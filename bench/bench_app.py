"""Load benchmark of the analysts' app: concurrent chat sessions over SSE while weekly runs execute.

    python bench/bench_app.py                                   # 20 sessions x 3 turns, 5 runs, 2000 voices/week
    python bench/bench_app.py --sessions 4 --turns 2 --runs 1 --per-week 200     # a quick check

Prepares two demo weeks and the knowledge base (bench_weekly.prepare), makes one offline run of
2026-W47 so chat has problems and proposals, serves `app.create_app` with uvicorn on a free loopback
port, then starts the chat sessions and the POST /api/runs at the same moment. The last line is JSON.
A --data-dir that already holds voc.db is reused (repeat calls skip the ~10 minutes of preparation).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import uvicorn

from agents.runner import run_and_write
from app import create_app
from bench.bench_weekly import WEEK, prepare
from voc.config import Settings
from voc.periods import parse_week

QUESTIONS = ["本周哪些问题在上升？为什么？", "信息科技部本周有哪些待处理建议？", "给我看手机银行登录问题的客户原话",
             "和上周相比，老年客户投诉有什么变化？", "上个月的积分规则整改有效果吗？"]
FOLLOW_UP = "那上周呢？"


@dataclass
class Turn:
    question: str
    sent: float  # seconds since the load started
    first_step: float | None = None  # seconds from sending to the first `step` / `tool` event
    answer_text: float | None = None  # seconds from sending to the `answer` event (the text is shown)
    answer: float | None = None  # seconds from sending to `done` (the turn is saved; the next can start)
    error: str | None = None


@dataclass
class Run:
    status: str
    wall: float | None = None  # server side: finished_at - started_at
    error: str | None = None


def script(session: int, turns: int) -> list[str]:
    """Session i asks question i, the follow-up, question i+1, the follow-up, …"""
    return [FOLLOW_UP if t % 2 else QUESTIONS[(session + t // 2) % len(QUESTIONS)] for t in range(turns)]


async def chat_turn(client: httpx.AsyncClient, turn: Turn, session_id: str | None, timeout: float) -> str | None:
    body = {"message": turn.question} | ({"session_id": session_id} if session_id else {})
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout), client.stream("POST", "/api/chat", json=body) as response:
            if response.status_code != 200:
                turn.error = f"HTTP {response.status_code}: {(await response.aread())[:200]!r}"
                return session_id
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                event = json.loads(line.removeprefix("data: "))
                kind = event["type"]
                if kind == "session":
                    session_id = event["session_id"]
                elif kind in ("step", "tool") and turn.first_step is None:
                    turn.first_step = time.perf_counter() - started
                elif kind == "answer":
                    turn.answer_text = time.perf_counter() - started
                elif kind == "error":
                    turn.error = event.get("message", "error event")
                elif kind == "done":
                    turn.answer = None if turn.error else time.perf_counter() - started
                    return session_id
            turn.error = turn.error or "stream ended without done"
    except TimeoutError:
        turn.error = f"timeout after {timeout:.0f} s"
    except httpx.HTTPError as exc:
        turn.error = f"{type(exc).__name__}: {exc}"
    return session_id


async def chat_session(client: httpx.AsyncClient, index: int, turns: int, timeout: float, t0: float) -> list[Turn]:
    done: list[Turn] = []
    session_id: str | None = None
    for question in script(index, turns):
        turn = Turn(question, time.perf_counter() - t0)
        session_id = await chat_turn(client, turn, session_id, timeout)
        done.append(turn)
    return done


async def weekly_run(client: httpx.AsyncClient, timeout: float, poll: float = 0.5) -> Run:
    try:
        async with asyncio.timeout(timeout):
            started = await client.post("/api/runs", json={"week": WEEK})
            if started.status_code != 202:
                return Run("failed", error=f"HTTP {started.status_code}: {started.text[:200]}")
            run_id = started.json()["run_id"]
            while (job := (await client.get(f"/api/runs/{run_id}")).json())["status"] in ("queued", "running"):
                await asyncio.sleep(poll)
    except TimeoutError:
        return Run("timeout", error=f"timeout after {timeout:.0f} s")
    except httpx.HTTPError as exc:
        return Run("failed", error=f"{type(exc).__name__}: {exc}")
    wall = (datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])).total_seconds()
    return Run(job["status"], round(wall, 1), job.get("error"))


async def load(base_url: str, args: argparse.Namespace) -> tuple[list[Turn], list[Run], dict[str, float]]:
    limits = httpx.Limits(max_connections=args.sessions + args.runs + 5)
    async with httpx.AsyncClient(base_url=base_url, timeout=None, limits=limits, trust_env=False) as client:
        t0 = time.perf_counter()
        phases: dict[str, float] = {}

        async def timed(name: str, aw: Any) -> Any:
            result = await aw
            phases[name] = round(time.perf_counter() - t0, 2)
            return result

        sessions = [chat_session(client, i, args.turns, args.turn_timeout, t0) for i in range(args.sessions)]
        chats, runs = await asyncio.gather(timed("chat_wall_s", asyncio.gather(*sessions)),
                                           timed("runs_wall_s", asyncio.gather(
                                               *(weekly_run(client, args.run_timeout) for _ in range(args.runs)))))
    return [t for session in chats for t in session], runs, phases


def serve(settings: Settings) -> tuple[uvicorn.Server, threading.Thread, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(f"{base_url}/api/runs", timeout=5, trust_env=False).status_code == 200:
                return server, thread, base_url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the app did not start")
        time.sleep(0.2)


def pct(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1 or q == 100:
        return round(max(values), 3)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 3)


def report(turns: list[Turn], runs: list[Run], phases: dict[str, float], args: argparse.Namespace,
           setup: dict[str, Any], total: float) -> dict[str, Any]:
    first = [t.first_step for t in turns if t.first_step is not None]
    text = [t.answer_text for t in turns if t.answer_text is not None]
    answer = [t.answer for t in turns if t.answer is not None]
    walls = [r.wall for r in runs if r.status == "done" and r.wall is not None]
    runs_end = phases.get("runs_wall_s", 0.0)
    errors = [t.error for t in turns if t.error] + [f"run: {r.error or r.status}" for r in runs if r.status != "done"]
    figures = {
        "sessions": args.sessions, "turns": args.turns, "chat_turns": len(turns), "runs": args.runs,
        "per_week": args.per_week, "errors": len(errors), "chat_errors": sum(bool(t.error) for t in turns),
        "run_failures": sum(r.status != "done" for r in runs),
        "first_step_p50_s": pct(first, 50), "first_step_p99_s": pct(first, 99),
        "answer_p50_s": pct(answer, 50), "answer_p99_s": pct(answer, 99), "answer_max_s": pct(answer, 100),
        "answer_text_p50_s": pct(text, 50), "answer_text_p99_s": pct(text, 99),
        "turns_sent_while_runs_active": sum(t.sent < runs_end for t in turns) if args.runs else 0,
        "run_wall_min_s": min(walls, default=None), "run_wall_median_s": statistics.median(walls) if walls else None,
        "run_wall_max_s": max(walls, default=None), **phases, **setup,
        "error_samples": sorted(set(errors))[:5],
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1m": round(os.getloadavg()[0], 2), "platform": platform.platform()},
        "total_wall_s": round(total, 1),
    }
    rows = [("chat turns (errors)", f"{len(turns)} ({figures['chat_errors']})"),
            ("first step p50 / p99 s", f"{figures['first_step_p50_s']} / {figures['first_step_p99_s']}"),
            ("answer p50 / p99 / max s", f"{figures['answer_p50_s']} / {figures['answer_p99_s']} / "
                                         f"{figures['answer_max_s']}"),
            ("answer event p50 / p99 s", f"{figures['answer_text_p50_s']} / {figures['answer_text_p99_s']}"),
            ("turns sent while runs active", str(figures["turns_sent_while_runs_active"])),
            ("runs (failures)", f"{len(runs)} ({figures['run_failures']})"),
            ("run wall min / median / max s", f"{figures['run_wall_min_s']} / {figures['run_wall_median_s']} / "
                                              f"{figures['run_wall_max_s']}"),
            ("chat phase / runs phase s", f"{phases.get('chat_wall_s')} / {phases.get('runs_wall_s')}"),
            ("total wall s", str(figures["total_wall_s"]))]
    width = max(len(name) for name, _ in rows)
    print("\n".join(f"{name.ljust(width)}  {value}" for name, value in rows))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="default: a new temp dir; one holding voc.db is reused as is (--per-week ignored)")
    parser.add_argument("--per-week", type=int, default=2000, help="demo voices per week (two weeks)")
    parser.add_argument("--sessions", type=int, default=20, help="concurrent chat sessions")
    parser.add_argument("--turns", type=int, default=3, help="questions per session, in sequence")
    parser.add_argument("--runs", type=int, default=5, help="concurrent POST /api/runs during the chat load")
    parser.add_argument("--turn-timeout", type=float, default=600, help="seconds before a chat turn counts as error")
    parser.add_argument("--run-timeout", type=float, default=3600, help="seconds before a run counts as failed")
    args = parser.parse_args()
    started = time.perf_counter()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="voc-bench-app-"))
    reuse = (data_dir / "voc.db").exists()  # prepared by an earlier call: keep its voices and runs
    settings = Settings(data_dir=data_dir) if reuse else prepare(data_dir, args.per_week)
    prepared = time.perf_counter()
    if not reuse:
        asyncio.run(run_and_write(settings, period=parse_week(WEEK)))
    setup = {"prepare_s": round(prepared - started, 1), "first_run_s": round(time.perf_counter() - prepared, 1),
             "reused_data_dir": reuse}
    print(f"data in {settings.resolved_data_dir}; prepared in {setup['prepare_s']} s, "
          f"first offline run in {setup['first_run_s']} s", flush=True)
    server, thread, base_url = serve(settings)
    try:
        turns, runs, phases = asyncio.run(load(base_url, args))
    finally:
        server.should_exit = True
        thread.join(timeout=60)
    print(json.dumps(report(turns, runs, phases, args, setup, time.perf_counter() - started), ensure_ascii=False))


if __name__ == "__main__":
    main()
