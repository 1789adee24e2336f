"""Scoring functions: each takes gold labels (plain dicts from the dataset files) and the run's
outputs (the `voc.contracts` models) and returns figures."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sklearn.metrics import (
    adjusted_rand_score,
    confusion_matrix,
    f1_score,
    normalized_mutual_info_score,
    v_measure_score,
)

from voc.contracts import Cluster, Dimension, Priority, Proposal, Sentiment, VoiceResult

Labels = dict[str, Any]
Prediction = VoiceResult


def _ratio(hits: float, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def attribution_scores(gold: dict[str, Labels], predicted: dict[str, Prediction]) -> dict[str, Any]:
    ids = [i for i, g in gold.items() if g.get("owner") and i in predicted]
    strict = [predicted[i].owner_department == gold[i]["owner"] for i in ids]
    acceptable = [predicted[i].owner_department in {gold[i]["owner"], *(gold[i].get("owner_ok") or [])}
                  for i in ids]
    recall: dict[str, float | None] = {}
    for owner in sorted({gold[i]["owner"] for i in ids}):
        mine = [ok for i, ok in zip(ids, strict, strict=True) if gold[i]["owner"] == owner]
        recall[owner] = _ratio(sum(mine), len(mine))
    reviewed = [predicted[i].needs_review for i in ids]
    kept = [ok for ok, review in zip(acceptable, reviewed, strict=True) if not review]
    return {"n": len(ids), "owner_accuracy": _ratio(sum(strict), len(ids)),
            "owner_accuracy_acceptable": _ratio(sum(acceptable), len(ids)), "per_owner_recall": recall,
            "needs_review_rate": _ratio(sum(reviewed), len(ids)),
            "accuracy_without_review": _ratio(sum(kept), len(kept)),
            "review_curve": review_curve([predicted[i].owner_confidence for i in ids], acceptable)}


REVIEW_THRESHOLDS = tuple(round(0.05 * n, 2) for n in range(20))


def review_curve(confidence: list[float], acceptable: list[bool]) -> list[dict[str, float | None]]:
    """Per owner-confidence threshold: the share of voices below it (sent to review) and the
    acceptable-owner accuracy of the voices accepted automatically."""
    curve = []
    for threshold in REVIEW_THRESHOLDS:
        kept = [ok for c, ok in zip(confidence, acceptable, strict=True) if c >= threshold]
        curve.append({"threshold": threshold, "review_rate": _ratio(len(confidence) - len(kept), len(confidence)),
                      "accuracy_accepted": _ratio(sum(kept), len(kept))})
    return curve


def _classification(truth: list[str], guess: list[str], labels: list[str]) -> dict[str, Any]:
    return {"accuracy": _ratio(sum(t == g for t, g in zip(truth, guess, strict=True)), len(truth)),
            "macro_f1": round(float(f1_score(truth, guess, labels=labels, average="macro", zero_division=0)), 4)
            if truth else None}


def tracing_scores(gold: dict[str, Labels], predicted: dict[str, Prediction]) -> dict[str, Any]:
    dim_ids = [i for i, g in gold.items() if g.get("dimension") and i in predicted]
    dims = [d.value for d in Dimension]
    truth = [gold[i]["dimension"] for i in dim_ids]
    guess = [predicted[i].dimension.value for i in dim_ids]
    acceptable = [predicted[i].dimension in {gold[i]["dimension"], *(gold[i].get("dims_ok") or [])}
                  for i in dim_ids]
    tag_ids = [i for i, g in gold.items() if g.get("tag") and i in predicted]
    senti_ids = [i for i, g in gold.items() if g.get("sentiment") and i in predicted]
    sentiments = [s.value for s in Sentiment]
    return {
        "dimension": {"n": len(dim_ids), **_classification(truth, guess, dims),
                      "accuracy_acceptable": _ratio(sum(acceptable), len(dim_ids)),
                      "confusion": {"labels": dims,
                                    "matrix": confusion_matrix(truth, guess, labels=dims).tolist() if truth else []}},
        "tag": {"n": len(tag_ids),
                "accuracy": _ratio(sum(predicted[i].tag == gold[i]["tag"] for i in tag_ids), len(tag_ids)),
                "l2_accuracy": _ratio(sum(_l2(predicted[i].tag) == _l2(gold[i]["tag"]) for i in tag_ids),
                                      len(tag_ids))},
        "sentiment": {"n": len(senti_ids), **_classification([gold[i]["sentiment"] for i in senti_ids],
                                                             [predicted[i].sentiment.value for i in senti_ids],
                                                             sentiments),
                      "negative_recall": _recall([gold[i]["sentiment"] for i in senti_ids],
                                                 [predicted[i].sentiment.value for i in senti_ids],
                                                 Sentiment.NEGATIVE.value)},
    }


def _recall(truth: list[str], guess: list[str], label: str) -> float | None:
    hits = [g == label for t, g in zip(truth, guess, strict=True) if t == label]
    return _ratio(sum(hits), len(hits))


def _l2(tag: str) -> str:
    return ">".join(tag.split(">")[:2])


def issue_members(gold: dict[str, Labels], predicted: dict[str, Prediction]) -> list[str]:
    """Negative voices of problems (planned issues and one-offs) that the run saw."""
    return [i for i, g in gold.items() if i in predicted and g.get("sentiment") == Sentiment.NEGATIVE
            and (str(g.get("issue", "")).startswith("G") or g.get("issue") == "single")]


def clustering_scores(gold: dict[str, Labels], predicted: dict[str, Prediction]) -> dict[str, Any]:
    """Clusters vs gold issues over negative voices; a one-off or an outlier is its own group."""
    ids = issue_members(gold, predicted)
    truth = [gold[i]["issue"] if gold[i]["issue"] != "single" else f"single:{i}" for i in ids]
    guess = [predicted[i].cluster_id or f"outlier:{i}" for i in ids]
    if not ids:
        return {"n": 0}
    return {"n": len(ids), "ari": round(float(adjusted_rand_score(truth, guess)), 4),
            "nmi": round(float(normalized_mutual_info_score(truth, guess)), 4),
            "v_measure": round(float(v_measure_score(truth, guess)), 4)}


def majority_cluster(issue: str, gold: dict[str, Labels], predicted: dict[str, Prediction]) -> str | None:
    clusters = Counter(predicted[i].cluster_id for i, g in gold.items()
                       if g.get("issue") == issue and i in predicted and predicted[i].cluster_id)
    return sorted(clusters.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] if clusters else None


def keyword_hit_rate(issues: list[dict[str, Any]], matched: dict[str, str | None],
                     names: dict[str, str]) -> float | None:
    """Share of the gold issues whose matched problem's name (label and keywords) says one of the
    issue's keywords."""
    hits = [any(k in names[cluster] for k in issue["keywords"])
            for issue in issues if (cluster := matched.get(issue["id"])) and cluster in names]
    return _ratio(sum(hits), len(issues))


def cluster_name(cluster: Cluster) -> str:
    return cluster.label + "".join(cluster.keywords)


def _rank(priority: str) -> int:
    return Priority(priority).rank


def analysis_scores(issues: list[dict[str, Any]], gold: dict[str, Labels], predicted: dict[str, Prediction],
                    clusters: list[Cluster]) -> dict[str, Any]:
    by_id = {c.cluster_id: c for c in clusters}
    matched = {issue["id"]: majority_cluster(issue["id"], gold, predicted) for issue in issues}
    found = {k: by_id[v] for k, v in matched.items() if v}
    gold_rising = {i["id"] for i in issues if i.get("rising")}
    predicted_rising = {issue for issue, c in found.items() if c.rising}
    exact = [found[i["id"]].priority == i["priority"] for i in issues if i["id"] in found]
    within = [abs(found[i["id"]].priority.rank - _rank(i["priority"])) <= 1 for i in issues if i["id"] in found]
    ranked = sorted(clusters, key=lambda c: (c.priority.rank, -c.size, c.cluster_id))
    top3 = {c.cluster_id for c in ranked[:3]}
    return {
        "issues": len(issues), "issues_found": len(found),
        "keyword_hit_rate": keyword_hit_rate(issues, matched, {c.cluster_id: cluster_name(c) for c in clusters}),
        "spike_precision": _ratio(len(predicted_rising & gold_rising), len(predicted_rising)),
        "spike_recall": _ratio(len(predicted_rising & gold_rising), len(gold_rising)),
        "priority_exact": _ratio(sum(exact), len(issues)), "priority_within_one": _ratio(sum(within), len(issues)),
        "p1_in_top3": {i["id"]: matched.get(i["id"]) in top3 for i in issues if i["priority"] == Priority.P1},
        "matched_clusters": matched,
    }


_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def numbers_in(texts: Iterable[str]) -> set[str]:
    return {n for t in texts for n in _NUMBER.findall(t)}


def application_scores(issues: list[dict[str, Any]], gold: dict[str, Labels], predicted: dict[str, Prediction],
                       clusters: list[Cluster], proposals: list[Proposal], period: Any,
                       case_exists: Any, texts: dict[str, str]) -> dict[str, Any]:
    by_cluster = {c.cluster_id: c for c in clusters}
    covered_clusters = {c for p in proposals for c in (p.cluster_ids or [p.cluster_id])}
    high = [i for i in issues if _rank(i["priority"]) <= Priority.P2.rank]
    covered = [i for i in high if majority_cluster(i["id"], gold, predicted) in covered_clusters]
    owners_ok, evidence_ok, cases_ok, grounded = [], [], [], []
    issue_of_cluster = {majority_cluster(i["id"], gold, predicted): i for i in issues}
    for proposal in proposals:
        mine = [by_cluster[c] for c in (proposal.cluster_ids or [proposal.cluster_id])]
        issue = issue_of_cluster.get(proposal.cluster_id)
        if issue:
            owners_ok.append(proposal.owner_department in {issue["owner"], *(issue.get("owner_ok") or [])})
        voices = {v for c in mine for v in c.voice_ids}
        evidence_ok.append(all(e in predicted and e in voices for e in proposal.evidence_voice_ids))
        cases_ok.append(all(case_exists(c) for c in proposal.cited_case_ids))
        grounded.append(_grounded(proposal, mine, period, [texts.get(v, "") for v in voices]))
    return {"proposals": len(proposals), "p1_p2_coverage": _ratio(len(covered), len(high)),
            "owner_correct": _ratio(sum(owners_ok), len(owners_ok)),
            "evidence_valid": _ratio(sum(evidence_ok), len(evidence_ok)),
            "cited_cases_exist": _ratio(sum(cases_ok), len(cases_ok)),
            "grounded": _ratio(sum(grounded), len(grounded))}


FACT_FIELDS = ("current_count", "previous_count", "distinct_customers", "complaint_count", "size")


def _grounded(proposal: Proposal, clusters: list[Cluster], period: Any, texts: list[str]) -> bool:
    """Every number in the problem and root cause is a fact of the problems it covers (a count, a sum
    of counts, a count of its voices, a channel's count), a day of the period, the period label, or a
    number its voices say (a version); KPI baselines are counts and targets follow the stated rule."""
    size = sum(c.size for c in clusters)
    facts = numbers_in([period.label, *(c.tag for c in clusters), *texts])
    facts |= {str(n) for c in clusters for n in (*(getattr(c, f) for f in FACT_FIELDS), *c.channels.values())}
    facts |= {str(sum(getattr(c, f) for c in clusters)) for f in FACT_FIELDS}
    facts |= {str(n) for n in range(size + 1)}  # "（n条）": how many of its voices say a phrase
    days = [period.start + timedelta(days=n) for n in range((period.end - period.start).days + 1)]
    facts |= {str(d.day) for d in days} | {str(d.month) for d in days}
    if not numbers_in([proposal.problem, proposal.root_cause]) <= facts:
        return False
    baselines = {sum(getattr(c, f) for c in clusters) for f in ("current_count", "distinct_customers",
                                                                 "complaint_count")}
    for kpi in proposal.kpis:
        reduction = re.search(r"下降(\d+)%", kpi.rule)
        if kpi.baseline not in baselines or not reduction or kpi.target >= kpi.baseline:
            return False
        if kpi.target != max(0, min(kpi.baseline - 1, int(kpi.baseline * (1 - int(reduction.group(1)) / 100)))):
            return False
    return True
