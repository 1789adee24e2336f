"""Running the graph for a period with a checkpointer, resuming a run, and writing the outputs of
`voc run` through `voc.contracts.RunOutputs` (the shared output contract)."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver

from agents.configuration import Configuration
from agents.context import Progress, RunContext
from agents.graph import build_graph
from agents.llm_client import LLMClient, LLMUnavailable
from agents.state import RunState
from agents.toolbox import open_toolbox
from voc.config import Settings
from voc.contracts import (
    Cluster,
    Dimension,
    Engine,
    Incident,
    PeriodRef,
    Proposal,
    RunCounts,
    RunOutputs,
    RunSummary,
    Sentiment,
    Unproposed,
    VoiceResult,
)
from voc.models import LOCAL_TZ
from voc.periods import Period


class RunError(RuntimeError):
    """A run cannot start or resume (unknown run id, LLM not configured, …)."""


@asynccontextmanager
async def checkpointer_for(settings: Settings, filename: str = "checkpoints.sqlite") -> AsyncIterator[
        BaseCheckpointSaver[Any]]:
    """Postgres when the store is Postgres, otherwise a SQLite file in the data directory (one file per
    use: chat turns must not queue behind a weekly run's large checkpoints on one SQLite lock)."""
    url = settings.resolved_database_url
    if url.startswith("postgresql"):
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with AsyncPostgresSaver.from_conn_string(url.replace("+psycopg", "")) as saver:
            await saver.setup()
            yield saver
    else:
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        settings.resolved_data_dir.mkdir(parents=True, exist_ok=True)
        async with AsyncSqliteSaver.from_conn_string(str(settings.resolved_data_dir / filename)) as saver:
            yield saver


def new_run_id(period: Period, engine: str) -> str:
    """Readable and unique: two runs of one week started in the same second (two terminals, the
    app and a cron job) differ by their random tail, so they never share a folder or a thread."""
    stamp = datetime.now(LOCAL_TZ).strftime("%Y%m%dT%H%M%S")
    return f"{period.label.replace('~', '_')}-{engine}-{stamp}-{secrets.token_hex(3)}"


def initial_state(run_id: str, period: Period, engine: str) -> RunState:
    previous = period.previous()
    return {"run_id": run_id, "engine": engine,
            "period": {"start": period.start.isoformat(), "end": period.end.isoformat(), "label": period.label},
            "previous_period": {"start": previous.start.isoformat(), "end": previous.end.isoformat(),
                                "label": previous.label}}


def _llm_engine(settings: Settings, engine: str) -> LLMClient | None:
    if engine != Engine.LLM:
        return None
    try:
        return LLMClient(settings)
    except LLMUnavailable as exc:
        raise RunError(str(exc)) from exc


async def run_exists(settings: Settings, run_id: str) -> bool:
    """A run with this id has a checkpoint to resume from."""
    async with checkpointer_for(settings) as saver:
        return await saver.aget_tuple({"configurable": {"thread_id": run_id}}) is not None


async def run_graph(settings: Settings, *, period: Period | None = None, engine: str = Engine.OFFLINE,
                    run_id: str | None = None, resume: bool = False, config: Configuration | None = None,
                    progress: Progress | None = None) -> RunState:
    """Run (or resume) the graph; the thread id is the run id, so a killed run continues where its
    last checkpoint left it."""
    config = config or Configuration.model_validate({"engine": engine})
    async with checkpointer_for(settings) as saver:
        graph = build_graph().compile(checkpointer=saver)
        if resume:
            if run_id is None:
                raise RunError("继续运行需要运行编号：voc run --resume RUN_ID")
            snapshot = await graph.aget_state({"configurable": {"thread_id": run_id}})
            if not snapshot.values:
                raise RunError(f"没有可继续的运行 {run_id!r}：运行编号见 voc run 开始时的输出或 DATA_DIR/runs/")
            engine = snapshot.values["engine"]
            payload: RunState | None = None
        else:
            if period is None:
                raise RunError("新的运行需要统计期：--week 2026-W47，或 --from 与 --to")
            run_id = run_id or new_run_id(period, engine)
            payload = initial_state(run_id, period, engine)
        thread: RunnableConfig = {"configurable": {"thread_id": run_id}}
        llm = _llm_engine(settings, engine)
        try:
            async with open_toolbox(settings) as toolbox:
                context = RunContext(settings=settings, config=config, toolbox=toolbox, llm=llm, progress=progress)
                await graph.ainvoke(payload, thread, context=context)
        except BaseExceptionGroup as group:
            raise _root_cause(group) from group
        finally:
            if llm is not None:
                await llm.aclose()
        final = await graph.aget_state(thread)
        state = cast(RunState, dict(final.values))
        state["tool_calls"] = dict(toolbox.calls)
        return state


def _root_cause(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The MCP sessions' task groups wrap a node's error in nested groups; surface the error itself."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def voice_results(state: RunState) -> list[VoiceResult]:
    attributions = {a["voice_id"]: a for a in state.get("attributions", [])}
    traces = {t["voice_id"]: t for t in state.get("traces", [])}
    clusters = {v: c["cluster_id"] for c in state.get("clusters", []) for v in c["voice_ids"]}
    results = []
    for voice in state.get("voices", []):
        owner, trace = attributions[voice["id"]], traces[voice["id"]]
        results.append(VoiceResult(
            id=voice["id"], owner_department=owner["owner_department"], owner_confidence=owner["owner_confidence"],
            dimension=trace["dimension"], tag=trace["tag"], sentiment=trace["sentiment"], intensity=trace["intensity"],
            cluster_id=clusters.get(voice["id"]), needs_review=owner["needs_review"],
            engine=Engine.combined((owner["engine"], trace["engine"]))))
    return results


def run_summary(state: RunState, results: list[VoiceResult], wall_seconds: float) -> RunSummary:
    negatives = sum(r.sentiment is Sentiment.NEGATIVE for r in results)
    outliers = len(state.get("outlier_ids", []))
    clusters = state.get("clusters", [])
    llm = dict(state.get("llm", {}))
    prompts = llm.pop("prompts", {})  # the LLM engine reports its template versions with its usage
    llm["fallbacks"] = sum(r.engine is Engine.FALLBACK for r in results) + sum(
        p.get("engine") == Engine.FALLBACK for p in state.get("proposals", []))
    counts = RunCounts(
        voices=len(results), previous_voices=len(state.get("previous_voices", [])),
        sentiment=Counter(r.sentiment for r in results), negative=negatives,
        needs_review=sum(r.needs_review for r in results), clusters=len(clusters),
        clustered=negatives - outliers, outliers=outliers, priorities=Counter(c["priority"] for c in clusters),
        rising=sum(c["rising"] for c in clusters), proposals=len(state.get("proposals", [])),
        # 人机物法环 of the negative voices, this period and the previous one (for the weekly report).
        dimensions=_negative_dimensions(state.get("traces", [])),
        previous_negative=sum(t["sentiment"] == Sentiment.NEGATIVE for t in state.get("previous_traces", [])),
        previous_dimensions=_negative_dimensions(state.get("previous_traces", [])))
    return RunSummary(
        run_id=state["run_id"], period=PeriodRef.model_validate(state["period"]),
        previous_period=PeriodRef.model_validate(state["previous_period"]),
        engine=Engine(state["engine"]), counts=counts,
        outlier_rate=round(outliers / negatives, 4) if negatives else 0.0,
        timings={**state.get("timings", {}), "wall": round(wall_seconds, 3)}, llm=llm,
        tool_calls=dict(state.get("tool_calls", {})), prompts=prompts,
        incidents=[Incident.model_validate(i) for i in state.get("incidents", [])],
        unproposed=[Unproposed.model_validate(u) for u in state.get("unproposed", [])])


def _negative_dimensions(traces: list[dict[str, Any]]) -> dict[Dimension, int]:
    return dict(sorted(Counter(t["dimension"] for t in traces if t["sentiment"] == Sentiment.NEGATIVE).items()))


def write_outputs(state: RunState, out_dir: Path, wall_seconds: float) -> RunSummary:
    results = voice_results(state)
    summary = run_summary(state, results, wall_seconds)
    RunOutputs(summary=summary, voices=results,
               clusters=[Cluster.model_validate(c) for c in state.get("clusters", [])],
               proposals=[Proposal.model_validate(p) for p in state.get("proposals", [])]).write(out_dir)
    return summary


async def run_and_write(settings: Settings, out_dir: Path | None = None, **kwargs: Any) -> tuple[Path, RunSummary]:
    started = time.perf_counter()
    state = await run_graph(settings, **kwargs)
    target = out_dir or settings.runs_dir / state["run_id"]
    return target, write_outputs(state, target, time.perf_counter() - started)
