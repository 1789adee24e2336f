"""Problem-level measures (4/6): is each gold problem one problem, one proposal and one incident, and
do its measures come from sources that fit it?

- fragmentation: per gold issue, the share of its voices in its largest predicted problem (outliers
  count against it), averaged over issues: 1.0 means no issue was split.
- duplicate proposals: proposals beyond the first for one gold unit, where a unit is a gold incident
  (all its symptom issues) or an issue outside any incident.
- incident recall: gold incidents whose symptom issues all land in problems of one predicted incident.
- measure relevance: share of proposal measures whose source is labelled relevant to the gold tag of
  the proposal's main problem (eval/relevance.yaml), or is that tag's own typical measures.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from eval.metrics import _ratio, issue_members
from voc.contracts import TAG_SOURCE, Cluster, Proposal, VoiceResult

RELEVANCE = Path(__file__).resolve().parent / "relevance.yaml"
Labels = dict[str, Any]


def issue_voices(gold: dict[str, Labels], predicted: dict[str, VoiceResult]) -> dict[str, list[str]]:
    """The voices of each gold issue that the run saw, negative ones only (problems are negative)."""
    found: dict[str, list[str]] = {}
    for voice_id in issue_members(gold, predicted):
        if gold[voice_id]["issue"] != "single":
            found.setdefault(str(gold[voice_id]["issue"]), []).append(voice_id)
    return found


def fragmentation(gold: dict[str, Labels], predicted: dict[str, VoiceResult]) -> float | None:
    shares = []
    for voices in issue_voices(gold, predicted).values():
        largest = _largest_problem(voices, predicted)
        shares.append(sum(predicted[v].cluster_id == largest for v in voices) / len(voices) if largest else 0.0)
    return _ratio(sum(shares), len(shares))


def main_issue(proposal: Proposal, clusters: dict[str, Cluster], gold: dict[str, Labels]) -> str | None:
    """The gold issue most of the proposal's main problem's voices belong to."""
    cluster = clusters.get(proposal.cluster_id)
    issues = Counter(str(gold[v].get("issue")) for v in (cluster.voice_ids if cluster else []) if v in gold)
    issues.pop("None", None)
    return sorted(issues.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] if issues else None


def duplicate_proposals(proposals: list[Proposal], clusters: list[Cluster], gold: dict[str, Labels],
                        incidents: list[dict[str, Any]]) -> int:
    unit_of = {issue: incident["id"] for incident in incidents for issue in incident.get("issues", [])}
    by_id = {c.cluster_id: c for c in clusters}
    units = Counter(unit_of.get(issue, issue) for p in proposals
                    if (issue := main_issue(p, by_id, gold)) and issue.startswith("G"))
    return sum(n - 1 for n in units.values())


def incident_recall(incidents: list[dict[str, Any]], gold: dict[str, Labels], predicted: dict[str, VoiceResult],
                    clusters: list[Cluster]) -> float | None:
    incident_of = {c.cluster_id: c.incident_id for c in clusters}
    voices = issue_voices(gold, predicted)
    recovered = []
    for incident in incidents:
        problems = {_largest_problem(voices.get(issue, []), predicted) for issue in incident.get("issues", [])}
        linked = {incident_of.get(p) for p in problems if p}
        # Every symptom in one problem, or every symptom's problem in one and the same predicted incident.
        recovered.append(None not in problems and (len(problems) == 1 or (len(linked) == 1 and None not in linked)))
    return _ratio(sum(recovered), len(recovered))


def _largest_problem(voices: list[str], predicted: dict[str, VoiceResult]) -> str | None:
    counted = Counter(predicted[v].cluster_id for v in voices if predicted[v].cluster_id)
    return sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] if counted else None


def load_relevance(path: Path = RELEVANCE) -> dict[str, set[str]]:
    """Tag → the case and document ids labelled relevant to it."""
    if not path.is_file():
        return {}
    spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {tag: {*entry.get("cases", []), *entry.get("docs", [])} for tag, entry in (spec.get("tags") or {}).items()}


def measure_relevance(proposals: list[Proposal], clusters: list[Cluster], gold: dict[str, Labels],
                      issues: list[dict[str, Any]], relevance: dict[str, set[str]]) -> float | None:
    tag_of = {issue["id"]: issue["tag"] for issue in issues}
    by_id = {c.cluster_id: c for c in clusters}
    verdicts = []
    for proposal in proposals:
        issue = main_issue(proposal, by_id, gold)
        tag = tag_of.get(issue or "")
        if tag is None:
            continue
        for source in (s.source for s in proposal.measure_sources):
            verdicts.append(source == f"{TAG_SOURCE}{tag}" or source in relevance.get(tag, set()))
    return _ratio(sum(verdicts), len(verdicts))


def problem_scores(dataset_issues: list[dict[str, Any]], incidents: list[dict[str, Any]], gold: dict[str, Labels],
                   predicted: dict[str, VoiceResult], clusters: list[Cluster],
                   proposals: list[Proposal]) -> dict[str, Any]:
    return {"fragmentation": fragmentation(gold, predicted),
            "duplicate_proposals": duplicate_proposals(proposals, clusters, gold, incidents),
            "incident_recall": incident_recall(incidents, gold, predicted, clusters) if incidents else None,
            "measure_relevance": measure_relevance(proposals, clusters, gold, dataset_issues, load_relevance())}
