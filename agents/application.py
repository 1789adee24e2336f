"""应用 Application: an owner-assigned improvement proposal for each priority problem, built from the
cluster's facts, the knowledge base and past successful cases (retrieved through MCP).

Every figure in a proposal comes from the cluster (counts, customers, funnel tiers) or from a stated
rule (targets by priority, due dates by SLA in working days); prose never introduces a number.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from langgraph.runtime import Runtime
from pydantic import BaseModel, ConfigDict, Field

from agents.configuration import SLA_WORKING_DAYS, TARGET_REDUCTION
from agents.context import RunContext, context_of, llm_stats, tools_for
from agents.llm_client import InvalidAnswer, LLMClient, response_schema, validated
from agents.prompts import DATA_RULE, MAX_QUOTE_CHARS, MAX_QUOTES, as_data, block
from agents.state import RunState
from agents.toolbox import Toolbox
from voc.contracts import Cluster, Engine, Evidence, Kpi, Proposal, Sentiment
from voc.pii import mask_text
from voc.registration import has_markup
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
                rewritten = await llm_write_proposal(context.llm, cluster, quotes, docs, cases, proposal)
                proposal = rewritten or proposal.model_copy(update={"engine": Engine.FALLBACK})
            proposals.append(proposal.model_dump(mode="json"))
            context.report("应用", 1)
        await toolbox.call("proposals", "register_run", run_id=state["run_id"], week=period["label"],
                           proposals=proposals, clusters=state.get("clusters", []), volumes=problem_volumes(state))
    return {"proposals": proposals, "timings": {"application": round(time.perf_counter() - started, 3)},
            "llm": llm_stats(context, state)}


# ------------------------------------------------------------------ the LLM engine's 应用: the proposal's prose

MAX_DOC_CHARS = 600
_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")
_ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_#][A-Za-z0-9]+)*")


class ProposalAnswer(BaseModel):
    """The four prose fields the model may rewrite, and its choice among the frame's cited cases."""

    model_config = ConfigDict(str_strip_whitespace=True)
    problem: str = Field(min_length=1, max_length=400)
    root_cause: str = Field(min_length=1, max_length=300)
    short_term_measures: list[str] = Field(min_length=1, max_length=6)
    long_term_measures: list[str] = Field(min_length=1, max_length=6)
    cited_case_ids: list[str] | None = None  # None: keep the frame's citations


async def llm_write_proposal(llm: LLMClient, cluster: Cluster, quotes: dict[str, str], docs: list[dict[str, Any]],
                             cases: list[dict[str, Any]], frame: Proposal) -> Proposal | None:
    """The frame with its prose rewritten by the model, every fact kept (None: no usable answer)."""
    facts, draft = _proposal_facts(cluster, frame), _proposal_draft(frame)
    user = "\n".join([
        "请在不改变任何事实的前提下改写整改建议的文字部分，输出 JSON。", DATA_RULE,
        "facts 数据块中是不可更改的事实，文字中出现的任何数字和编号都必须来自 facts 或 draft 数据块。",
        block("facts", facts), block("draft", draft),
        block("voices", _evidence_rows(quotes, frame.evidence_voice_ids or cluster.representative_voice_ids)),
        block("cases", [_case_row(c) for c in cases]),
        block("docs", [_doc_row(d) for d in docs])])
    allowed = [json.dumps(facts, ensure_ascii=False), json.dumps(draft, ensure_ascii=False)]
    schema = response_schema(ProposalAnswer, {"cited_case_ids": frame.cited_case_ids})
    return await llm.ask("proposal", llm.system_prompt("application"), user, schema,
                         lambda content: _proposal(content, frame, allowed))


def _proposal(content: str | None, frame: Proposal, facts: list[str]) -> Proposal:
    answer = validated(content, ProposalAnswer)
    prose = [answer.problem, answer.root_cause, *answer.short_term_measures, *answer.long_term_measures]
    invented = ungrounded_numbers(prose, facts)
    if invented:
        raise InvalidAnswer(f"prose contains numbers that are not facts: {sorted(invented)}")
    if any(has_markup(text) for text in prose):
        raise InvalidAnswer("prose contains markup or links")  # what a voice in the prompt may try to plant
    chosen = frame.cited_case_ids if answer.cited_case_ids is None else answer.cited_case_ids
    update = {"problem": mask_text(answer.problem), "root_cause": mask_text(answer.root_cause),
              "short_term_measures": [mask_text(m) for m in answer.short_term_measures if m.strip()],
              "long_term_measures": [mask_text(m) for m in answer.long_term_measures if m.strip()],
              "cited_case_ids": [c for c in frame.cited_case_ids if c in chosen], "engine": Engine.LLM}
    # Every other field, facts included, is the frame's: validate the merge as a whole.
    return Proposal.model_validate(frame.model_dump() | update)


def _proposal_facts(cluster: Cluster, frame: Proposal) -> dict[str, Any]:
    return {"proposal_id": frame.proposal_id, "cluster_id": frame.cluster_id, "label": cluster.label,
            "priority": frame.priority, "owner_department": frame.owner_department, "dimension": frame.dimension,
            "tag": cluster.tag, "size": cluster.size, "current_count": cluster.current_count,
            "previous_count": cluster.previous_count, "rising": cluster.rising,
            "growth_z": round(cluster.growth_z, 2), "distinct_customers": cluster.distinct_customers,
            "complaint_count": cluster.complaint_count, "mean_intensity": round(cluster.mean_intensity, 2),
            "threat_count": cluster.threat_count, "blocked_count": cluster.blocked_count,
            "severity": cluster.severity, "impact": cluster.impact, "segments": cluster.segments,
            "channels": cluster.channels, "kpis": [k.model_dump() for k in frame.kpis],
            "due_date": frame.due_date.isoformat(), "evidence_voice_ids": frame.evidence_voice_ids,
            "cited_case_ids": frame.cited_case_ids, "cited_doc_ids": frame.cited_doc_ids}


def _proposal_draft(frame: Proposal) -> dict[str, Any]:
    return {"problem": frame.problem, "root_cause": frame.root_cause,
            "short_term_measures": frame.short_term_measures, "long_term_measures": frame.long_term_measures}


def _evidence_rows(quotes: dict[str, str], voice_ids: list[str]) -> list[dict[str, str]]:
    # The caller may pass every voice of the period: only the evidence goes into the prompt.
    chosen = [i for i in voice_ids if i in quotes][:MAX_QUOTES]
    return [{"voice_id": i, "quote": as_data(quotes[i], MAX_QUOTE_CHARS)} for i in chosen]


def _case_row(case: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "title", "dimension", "tag", "root_cause", "short_term_measures", "long_term_measures", "owner")
    return {k: case.get(k) for k in keys}


def _doc_row(doc: dict[str, Any]) -> dict[str, Any]:
    return {"doc_id": doc.get("doc_id"), "title": doc.get("title"), "section": doc.get("section"),
            "text": as_data(str(doc.get("text", "")), MAX_DOC_CHARS)}


def _canonical_number(token: str) -> str:
    """"01", "1" and "1.0" are the same number: a date written 12月1日 must match 2026-12-01."""
    try:
        return format(Decimal(token).normalize(), "f")
    except InvalidOperation:
        return token


def grounding_tokens(texts: Iterable[str]) -> set[str]:
    """Identifiers (CASE-011, V-0001, P1) as whole tokens, then the remaining numbers. Digits inside
    an identifier must not count as numbers: "P-2026W47-003" does not ground "3个月"."""
    tokens: set[str] = set()

    def identifier(match: re.Match[str]) -> str:
        if not any(c.isdigit() for c in match.group(0)):
            return match.group(0)
        tokens.add(match.group(0).upper())
        return " "

    for text in texts:
        tokens |= {_canonical_number(n) for n in _NUMBER_RE.findall(_ID_RE.sub(identifier, text))}
    return tokens


def ungrounded_numbers(prose: Iterable[str], facts: Iterable[str]) -> set[str]:
    """Numbers and identifiers of the prose found nowhere in the facts: invented counts, dates, ids."""
    return grounding_tokens(prose) - grounding_tokens(facts)
