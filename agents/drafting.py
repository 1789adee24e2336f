"""The offline engine's proposal frame: what a proposal answers, its root-cause finding, its measures
and its KPIs. Every figure comes from the problem's voices or a stated rule; the LLM engine may only
rewrite the prose around them (agents/application.py).

A proposal answers a *subject*: one problem, or one incident with its symptoms (one owner, one cause,
the combined volume). Its measures come only from sources that fit its scene: a past case with the
same L3 tag, then one of the same L2 group, then the tag's typical measures in the data dictionary.
A measure from another scene is never used, however similar its words.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any

from agents.configuration import TARGET_REDUCTION
from agents.incidents import onset_of
from voc.contracts import TAG_SOURCE, Cluster, Incident, Kpi, MeasureSource, Priority

_DIGITS = re.compile(r"\d")
_VERSION = re.compile(r"(?<![\d.])v?(\d+\.\d+(?:\.\d+)?)(?![\d.])", re.I)
MEASURES_PER_TERM = 3
CASES_CITED = 2


@dataclass(frozen=True)
class Subject:
    """What one proposal answers: a problem, or an incident's symptoms (the main one first)."""

    symptoms: list[Cluster]
    incident: Incident | None = None

    @property
    def main(self) -> Cluster:
        return self.symptoms[0]

    @property
    def owner(self) -> str:
        return self.incident.owner_department if self.incident else self.main.owner_department

    @property
    def priority(self) -> Priority:
        return min((c.priority for c in self.symptoms), key=lambda p: p.rank)

    @property
    def voice_ids(self) -> list[str]:
        return [v for c in self.symptoms for v in c.voice_ids]

    def total(self, field: str) -> int:
        return sum(int(getattr(c, field)) for c in self.symptoms)


def subjects(clusters: list[Cluster], incidents: list[Incident]) -> list[Subject]:
    """One subject per incident (its symptoms by priority and size) and one per problem outside any."""
    by_id = {c.cluster_id: c for c in clusters}
    linked = {c for incident in incidents for c in incident.cluster_ids}
    found = [Subject([by_id[c] for c in i.cluster_ids if c in by_id], i) for i in incidents]
    found += [Subject([c]) for c in clusters if c.cluster_id not in linked]
    return sorted((s for s in found if s.symptoms),
                  key=lambda s: (s.priority.rank, -s.total("size"), s.main.cluster_id))


# ------------------------------------------------------------------ KPIs: integers, targets below baselines


def kpis_for(subject: Subject) -> list[Kpi]:
    reduction = TARGET_REDUCTION[subject.priority]
    rule = f"{subject.priority}：较基线下降{int(reduction * 100)}%，取整且至少减少1（KD-001）"
    named = [("同类问题负面声量", subject.total("current_count"), "件/周"),
             ("涉及客户数", subject.total("distinct_customers"), "人/周"),
             ("升级为投诉及监管转送的声量", subject.total("complaint_count"), "件/周")]
    return [Kpi(name=name, baseline=baseline, target=target_of(baseline, reduction), unit=unit, rule=rule)
            for name, baseline, unit in named if baseline > 0]


def target_of(baseline: int, reduction: float) -> int:
    """Rounded down and at least one below the baseline: a target equal to the baseline asks nothing."""
    return max(0, min(baseline - 1, math.floor(baseline * (1 - reduction))))


# ------------------------------------------------------------------ measures that belong to the problem


def matching_cases(subject: Subject, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cases of the same L3 tag first, then of the same L2 group; nothing from another scene. Within
    each, a case of the problem's own business comes first (one tag such as 年费管理费 covers a credit
    card's annual fee and a debit card's account fee)."""
    tag, business = subject.main.tag, subject.main.business

    def order(case: dict[str, Any]) -> tuple[int, int]:
        return (0 if case.get("tag") == tag else 1, 0 if business and case.get("business") == business else 1)

    fitting = [c for c in cases if _group(str(c.get("tag") or "")) == _group(tag)]
    return list({c["id"]: c for c in sorted(fitting, key=order)}.values())[:CASES_CITED]


def measures(subject: Subject, cases: list[dict[str, Any]], tag: dict[str, Any] | None,
             term: str) -> list[MeasureSource]:
    """Up to three measures of one term (`short` / `long`), each with its source."""
    chosen: list[MeasureSource] = []
    for case in cases:
        for text in case.get(f"{term}_term_measures", []):
            if not _DIGITS.search(text):  # a case's figures belong to its own bank and period
                chosen.append(MeasureSource(measure=text, source=case["id"]))
    for text in (tag or {}).get(f"{term}_term_measures", []):
        chosen.append(MeasureSource(measure=text, source=f"{TAG_SOURCE}{subject.main.tag}"))
    unique = list({m.measure: m for m in chosen}.values())
    return unique[:MEASURES_PER_TERM] or [_fallback(subject, term)]


def _fallback(subject: Subject, term: str) -> MeasureSource:
    """When neither a fitting case nor the tag's typical measures exist (a tag added without them)."""
    text = (f"由{subject.owner}牵头核查代表性声音、定位直接原因并向客户回访说明" if term == "short"
            else f"将「{subject.main.tag}」纳入{subject.owner}的根因整改计划并按周跟踪声量")
    return MeasureSource(measure=text, source="KD-034")


def _group(tag: str) -> str:
    return ">".join(tag.split(">")[:2])


# ------------------------------------------------------------------ the problem and its root cause, as findings


def problem_statement(subject: Subject, period_label: str, has_previous: bool) -> str:
    main = subject.main
    if not has_previous:
        trend = "首周无对比"
    elif any(c.rising for c in subject.symptoms):
        trend = f"较上期{subject.total('previous_count')}条显著上升"
    else:
        trend = f"上期{subject.total('previous_count')}条"
    channels = Counter[str]()
    for cluster in subject.symptoms:
        channels.update(cluster.channels)
    where = "、".join(k for k, _ in sorted(channels.items(), key=lambda kv: (-kv[1], kv[0]))[:3])
    head = (f"「{subject.incident.cause}」引发{len(subject.symptoms)}类问题（"
            + "、".join(c.label for c in subject.symptoms) + "）") if subject.incident else f"「{main.label}」"
    return (f"{head}：{period_label}共{subject.total('current_count')}条负面声音（{trend}），"
            f"涉及{subject.total('distinct_customers')}位客户，其中投诉及监管层级{subject.total('complaint_count')}条；"
            f"集中在{where}。")


def root_cause_finding(subject: Subject, texts: dict[str, str], days: dict[str, date]) -> str:
    """What failed or changed (the phrases most voices say, a version they name), where it
    concentrates, since when, and how many customers; then the dimension and tag."""
    main = subject.main
    members = [texts[v] for v in subject.voice_ids if v in texts]
    said = [(k, sum(k in t for t in members)) for k in main.keywords[:3]]
    phrases = "、".join(f"「{k}」（{n}条）" for k, n in said if n)
    versions = Counter(v for t in members for v in set(_VERSION.findall(t)))
    version = next((f"，多提及版本{v}（{n}条）" for v, n in versions.most_common(1) if n >= 2), "")
    channel, count = max(main.channels.items(), key=lambda kv: (kv[1], kv[0]))
    onset = onset_of([days[v] for v in subject.voice_ids if v in days])
    cause = f"与「{subject.incident.cause}」同源；" if subject.incident else ""
    since = f"自{onset.month}月{onset.day}日起集中出现，" if onset else ""
    return (f"{cause}客户集中反映{phrases or main.label}{version}；主要来自{channel}（{count}条）；"
            f"{since}涉及{subject.total('distinct_customers')}位客户。"
            f"根因维度【{main.dimension}·{main.dimension.label}】，标签 {main.tag}。")
