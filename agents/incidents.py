"""溯源 across problems: symptoms of one cause become one incident.

A release that breaks several things at once, a fee or rule change, a system cut-over: customers
describe what they suffer (闪退, 人脸识别失败, 转账处理中), and each symptom clusters on its own. Two
problems are linked when both carry the same kind of cause signal in their own voices, belong to the
same owner or business and began rising within a day of each other (or, when they are not both rising,
belong to the same owner and the same business). The incident
takes the owner most of its voices point to, and one proposal answers it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date

from voc.contracts import Cluster, Incident

# Kinds of cause that customers name beside their symptom, and how they name them.
CAUSE_SIGNALS: dict[str, re.Pattern[str]] = {
    "版本发布": re.compile(r"新版本|新版|升级(了|后|以后|之后)|更新(了|后|以后|之后)|版本\s*v?\d+(\.\d+)+|"
                         r"\bv?\d+\.\d+\.\d+\b", re.I),
    "规则或收费调整": re.compile(r"(开始|改为|改成|调整为?)收费|收费标准|新规|规则(调整|改了|变了)|政策(调整|变了)|"
                            r"从\d+[月号日]\d*[号日]?(起|开始)|起(开始)?收|调整了"),
    "系统切换": re.compile(r"系统(升级|切换|迁移|维护|改造)|核心系统|停机|批量(迁移|处理)"),
}
MIN_SIGNAL_SHARE = 0.25  # of a problem's voices naming the cause kind: a quarter, not a stray mention
MIN_SIGNAL_VOICES = 3
ONSET_DAYS = 1


@dataclass(frozen=True)
class Evidence:
    """What the linking needs to know of one problem."""

    cluster: Cluster
    texts: list[str]
    days: list[date]
    business: str

    def signals(self) -> set[str]:
        found = set()
        for kind, pattern in CAUSE_SIGNALS.items():
            hits = sum(bool(pattern.search(text)) for text in self.texts)
            if hits >= MIN_SIGNAL_VOICES and hits / max(len(self.texts), 1) >= MIN_SIGNAL_SHARE:
                found.add(kind)
        return found

    def onset(self) -> date | None:
        return onset_of(self.days)


def onset_of(days: list[date]) -> date | None:
    """The first day of a problem's peak run: the earliest day with at least half the busiest day's voices."""
    if not days:
        return None
    per_day = Counter(days)
    peak = max(per_day.values())
    return min(day for day, n in per_day.items() if n * 2 >= peak)


def link(problems: list[Evidence]) -> list[Incident]:
    """Incidents of two or more problems; a problem joins at most one (union of linked pairs)."""
    parent = list(range(len(problems)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    shared: dict[tuple[int, int], str] = {}
    signals = [p.signals() for p in problems]
    for i, a in enumerate(problems):
        for j in range(i + 1, len(problems)):
            cause = _shared_cause(a, problems[j], signals[i], signals[j])
            if cause:
                shared[(i, j)] = cause
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(problems)):
        groups.setdefault(root(i), []).append(i)
    incidents: list[Incident] = []
    for members in sorted((g for g in groups.values() if len(g) > 1), key=lambda g: min(g)):
        causes = Counter(c for (i, j), c in shared.items() if i in members and j in members)
        incidents.append(_incident(len(incidents) + 1, [problems[i] for i in members], causes.most_common(1)[0][0]))
    return incidents


def _shared_cause(a: Evidence, b: Evidence, a_signals: set[str], b_signals: set[str]) -> str | None:
    common = a_signals & b_signals
    if not common:
        return None
    same_owner = a.cluster.owner_department == b.cluster.owner_department
    same_business = bool(a.business) and a.business == b.business
    if a.cluster.rising and b.cluster.rising:
        # Rising together from the same day, in one owner's or one business's area.
        first, second = a.onset(), b.onset()
        together = first is not None and second is not None and abs((first - second).days) <= ONSET_DAYS
        return sorted(common)[0] if together and (same_owner or same_business) else None
    # Without a shared rise, only problems of one owner and one business are linked by their words.
    return sorted(common)[0] if same_owner and same_business else None


def _incident(number: int, members: list[Evidence], cause: str) -> Incident:
    owners: Counter[str] = Counter()
    for member in members:
        owners[member.cluster.owner_department] += member.cluster.size
    onsets = [o for m in members if (o := m.onset())]
    ordered = sorted(members, key=lambda m: (m.cluster.priority.rank, -m.cluster.size, m.cluster.cluster_id))
    businesses = Counter(m.business for m in members if m.business)
    where = businesses.most_common(1)[0][0] if businesses else ""
    return Incident(incident_id=f"I{number:02d}", cluster_ids=[m.cluster.cluster_id for m in ordered],
                    owner_department=owners.most_common(1)[0][0], cause=f"{where}{cause}",
                    onset=min(onsets) if onsets else None)
