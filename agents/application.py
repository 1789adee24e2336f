"""应用 Application: an owner-assigned improvement proposal for each priority problem, built from the
cluster's facts, the knowledge base and past successful cases (retrieved through MCP).

Every figure in a proposal comes from the cluster (counts, customers, funnel tiers) or from a stated
rule (targets by priority, due dates by SLA in working days); prose never introduces a number.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import date
from typing import Any

from langgraph.runtime import Runtime

from agents.configuration import SLA_WORKING_DAYS, TARGET_REDUCTION
from agents.context import RunContext, context_of, llm_stats, tools_for
from agents.state import RunState
from agents.toolbox import Toolbox
from voc.contracts import Cluster, Evidence, Kpi, Proposal, Sentiment
from voc.pii import mask_text
from voc.workdays import WorkCalendar

_DIGITS = re.compile(r"\d")
QUOTE_CHARS = 60


def kpis_for(cluster: Cluster) -> list[Kpi]:
    reduction = TARGET_REDUCTION[cluster.priority]
    rule = f"{cluster.priority}：较基线下降{int(reduction * 100)}%（KD-001）"

    def kpi(name: str, baseline: int, unit: str) -> Kpi:
        return Kpi(name=name, baseline=baseline, target=round(baseline * (1 - reduction)), unit=unit, rule=rule)

    kpis = [kpi("同类问题负面声量", cluster.current_count, "件/周"),
            kpi("涉及客户数", cluster.distinct_customers, "人/周")]
    if cluster.complaint_count:
        kpis.append(kpi("升级为投诉及监管转送的声量", cluster.complaint_count, "件/周"))
    return kpis


def _measures(cases: list[dict[str, Any]], field: str, limit: int) -> list[str]:
    """Measures of the cited cases, without figures of their own (those belong to the other bank)."""
    found: list[str] = []
    for case in cases:
        for measure in case[field]:
            if not _DIGITS.search(measure) and measure not in found:
                found.append(measure)
    return found[:limit]


def problem_statement(cluster: Cluster, period_label: str) -> str:
    trend = (f"较上期{cluster.previous_count}条显著上升" if cluster.rising
             else f"上期{cluster.previous_count}条")
    channels = "、".join(k for k, _ in sorted(cluster.channels.items(), key=lambda kv: (-kv[1], kv[0]))[:3])
    return (f"「{cluster.tag.split('>')[-1]}」：{period_label}共{cluster.current_count}条负面声音（{trend}），"
            f"涉及{cluster.distinct_customers}位客户，其中投诉及监管层级{cluster.complaint_count}条；"
            f"集中在{channels}，关键词：{'、'.join(cluster.keywords[:4])}。")


def draft_proposal(cluster: Cluster, number: int, period_end: date, period_label: str,
                   quotes: dict[str, str], docs: list[dict[str, Any]], cases: list[dict[str, Any]],
                   calendar: WorkCalendar, evidence_count: int, continues: tuple[str, date] | None = None) -> Proposal:
    """`continues`: the id and due date of the open proposal a recurring problem belongs to; its SLA
    clock started when the problem was first raised, so the due date does not move."""
    dimension_name = cluster.dimension.label
    owner = cluster.owner_department
    short = _measures(cases, "short_term_measures", 3) or [f"由{owner}牵头核查代表性声音并向客户回访说明"]
    long = _measures(cases, "long_term_measures", 3) or [f"将「{cluster.tag}」纳入{owner}的根因整改计划"]
    if docs:
        long.append(f"对照《{docs[0]['title']}》完善制度与流程口径")
    evidence_ids = list(dict.fromkeys(cluster.representative_voice_ids + cluster.voice_ids))[:evidence_count]
    proposal_id, due = continues or (f"PR-{period_label}-{number:03d}",
                                     calendar.add_working_days(period_end, SLA_WORKING_DAYS[cluster.priority]))
    return Proposal(
        proposal_id=proposal_id, cluster_id=cluster.cluster_id, priority=cluster.priority,
        owner_department=cluster.owner_department, dimension=cluster.dimension,
        problem=problem_statement(cluster, period_label),
        root_cause=f"【{cluster.dimension}·{dimension_name}】{cluster.tag}",
        short_term_measures=short, long_term_measures=long, kpis=kpis_for(cluster),
        due_date=due,
        evidence_voice_ids=evidence_ids,
        evidence=[Evidence(voice_id=i, quote=mask_text(quotes[i])[:QUOTE_CHARS]) for i in evidence_ids],
        cited_case_ids=[c["id"] for c in cases], cited_doc_ids=list(dict.fromkeys(d["doc_id"] for d in docs)))


async def retrieve(toolbox: Toolbox, cluster: Cluster) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    query = f"{cluster.tag.split('>')[-1]} {' '.join(cluster.keywords[:4])}"
    docs = (await toolbox.call("knowledge", "search_knowledge", query=query, limit=3))["hits"]
    hits = (await toolbox.call("cases", "search_cases", query=query, dimension=cluster.dimension, limit=2))["hits"]
    return docs, [h["case"] for h in hits]


async def open_proposal(toolbox: Toolbox, cluster: Cluster, taken: list[str]) -> tuple[str, date] | None:
    """The open proposal this problem continues, so a recurring problem does not spawn a duplicate."""
    match = await toolbox.call("proposals", "match_open_proposal", owner_department=cluster.owner_department,
                               tag=cluster.tag, keywords=cluster.keywords, exclude=taken)
    return (match["proposal_id"], date.fromisoformat(match["due_date"])) if match.get("proposal_id") else None


def problem_volumes(state: RunState) -> dict[str, int]:
    """Negative voices of the period per owner|tag: the series effect evaluation compares."""
    owners = {a["voice_id"]: a["owner_department"] for a in state.get("attributions", [])}
    volumes: dict[str, int] = {}
    for trace in state.get("traces", []):
        if trace["sentiment"] == Sentiment.NEGATIVE:
            key = f"{owners.get(trace['voice_id'], '')}|{trace['tag']}"
            volumes[key] = volumes.get(key, 0) + 1
    return volumes


def priority_clusters(clusters: list[Cluster], priorities: tuple[str, ...], limit: int) -> list[Cluster]:
    chosen = [c for c in clusters if c.priority in priorities]
    return sorted(chosen, key=lambda c: (c.priority.rank, -c.size, c.cluster_id))[:limit]


async def apply(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    context = context_of(runtime)
    started = time.perf_counter()
    clusters = priority_clusters([Cluster.model_validate(c) for c in state.get("clusters", [])],
                                 context.config.proposal_priorities, context.config.max_proposals)
    quotes = {v["id"]: v["text"] for v in state.get("voices", [])}
    period = state["period"]
    calendar = WorkCalendar.load(context.settings.holidays_path)
    context.report("应用", 0, len(clusters))
    proposals: list[dict[str, Any]] = []
    async with tools_for(context) as toolbox:
        for number, cluster in enumerate(clusters, start=1):
            docs, cases = await retrieve(toolbox, cluster)
            continues = await open_proposal(toolbox, cluster, [p["proposal_id"] for p in proposals])
            proposal = draft_proposal(cluster, number, date.fromisoformat(period["end"]), period["label"], quotes,
                                      docs, cases, calendar, context.config.evidence_per_proposal, continues)
            if context.llm is not None:
                rewritten = await asyncio.to_thread(context.llm.write_proposal, cluster, quotes, docs, cases,
                                                    proposal)
                proposal = rewritten or proposal.model_copy(update={"engine": "fallback"})
            proposals.append(proposal.model_dump(mode="json"))
            context.report("应用", 1)
        await toolbox.call("proposals", "register_run", run_id=state["run_id"], week=period["label"],
                           proposals=proposals, clusters=state.get("clusters", []), volumes=problem_volumes(state))
    return {"proposals": proposals, "timings": {"application": round(time.perf_counter() - started, 3)},
            "llm": llm_stats(context)}
