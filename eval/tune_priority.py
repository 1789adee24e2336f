"""Choose the severity × impact thresholds of agents/scoring.py on a tuned set's issues table.

Reads an evaluated run (clusters.json) and its scorecard (which gold issue each problem matched),
recomputes every matched problem's priority over a grid of thresholds and prints the best settings
by exact agreement, then within-one. Only ever run it on gold_v1: gold_v2 is held out.

    python -m eval.tune_priority --out DATA_DIR/eval/gold_v1-offline
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import yaml

from eval.datasets import DATASETS_DIR
from voc.contracts import Cluster, Priority

VULNERABLE = "老年客户"


def priority(cluster: Cluster, negatives: int, shares: tuple[float, float, float], bands: tuple[float, ...],
             escalated: float) -> Priority:
    threat, blocked, vulnerable = shares
    size = max(cluster.size, 1)
    level = cluster.mean_intensity + (cluster.threat_count / size >= threat) + (cluster.blocked_count / size >= blocked)
    level += cluster.segments.get(VULNERABLE, 0) / size >= vulnerable
    severity = int(max(1, min(5, round(level))))
    share = cluster.size / max(negatives, 1)
    impact = min(5, 5 - sum(share < b for b in bands) + int(cluster.rising)
                 + int(cluster.complaint_count / size >= escalated))
    band = [2 if s >= 4 else 1 if s == 3 else 0 for s in (severity, impact)]
    return Priority.from_rank(5 - sum(band))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the scorecard folder of a gold_v1 evaluation")
    parser.add_argument("--dataset", default="gold_v1")
    args = parser.parse_args()
    if args.dataset != "gold_v1":
        raise SystemExit("tune only on gold_v1: gold_v2 is held out")
    card = json.loads((args.out / "scorecard.json").read_text(encoding="utf-8"))
    clusters = {c["cluster_id"]: Cluster.model_validate(c)
                for c in json.loads((args.out / "run" / "clusters.json").read_text(encoding="utf-8"))}
    issues = {i["id"]: i for i in yaml.safe_load((DATASETS_DIR / args.dataset / "issues.yaml").read_text())["issues"]}
    matched = {g: clusters[c] for g, c in card["analysis"]["matched_clusters"].items() if c in clusters}
    voices = [json.loads(line) for line in (args.out / "run" / "voices.jsonl").read_text().splitlines() if line]
    negatives = sum(v["sentiment"] == "负面" for v in voices)
    grid = itertools.product([0.1, 0.2, 0.3], [0.2, 0.3, 0.4], [0.3, 0.4, 0.5],
                             [(0.15, 0.075, 0.03, 0.015), (0.1, 0.05, 0.025, 0.01), (0.12, 0.06, 0.03, 0.015),
                              (0.2, 0.1, 0.04, 0.02)], [0.4, 0.5, 0.6])
    results = []
    for threat, blocked, vulnerable, bands, escalated in grid:
        ranks = [(Priority(issues[g]["priority"]).rank,
                  priority(c, negatives, (threat, blocked, vulnerable), bands, escalated).rank)
                 for g, c in matched.items()]
        exact = sum(a == b for a, b in ranks) / len(ranks)
        within = sum(abs(a - b) <= 1 for a, b in ranks) / len(ranks)
        results.append((exact, within, (threat, blocked, vulnerable, bands, escalated)))
    for exact, within, setting in sorted(results, key=lambda r: (-r[0], -r[1]))[:10]:
        print(f"exact {exact:.1%} within one {within:.1%}  threat/blocked/vulnerable/bands/escalated {setting}")


if __name__ == "__main__":
    main()
