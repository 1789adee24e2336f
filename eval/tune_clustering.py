"""Choose the analysis agent's clustering settings on gold_v1 (never on gold_v2, the held-out set).

Reads a finished `voc eval --dataset gold_v1` (its store and its run's labels), so the voices, tags
and owners are exactly what the analysis agent saw; the voices are cleaned and embedded once, as the
agent does (agents/analysis.py), and only the composition weights and the cut vary. Prints ARI,
fragmentation and outlier rate per setting, best first:

    python -m eval.tune_clustering --eval-dir DATA_DIR/eval/gold_v1 --run-dir DATA_DIR/eval/gold_v1-offline/run
"""

from __future__ import annotations

import argparse
import itertools
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

from agents.analysis import composed, problem_blocks
from agents.clustering import Composition, cluster_labels, settle_small_groups
from eval.datasets import load_dataset
from eval.harness import knowledge_inputs, run_triples
from voc.config import Settings
from voc.contracts import Sentiment, read_voices
from voc.embeddings import EmbeddingCache
from voc.storage import Store

GRID = {"words": (0.3, 0.5, 0.7), "tag": (0.2, 0.3, 0.5), "group": (0.2, 0.3, 0.5), "owner": (0.3,),
        "cut": (0.65, 0.75, 0.85), "attach": (0.1, 0.15, 0.2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path, required=True)
    parser.add_argument("--run-dir", type=Path, required=True)
    args = parser.parse_args()
    gold = load_dataset("gold_v1").labels
    predicted = {r.id: r for r in read_voices(args.run_dir)}
    ids = sorted(i for i, r in predicted.items() if r.sentiment is Sentiment.NEGATIVE)
    triples = run_triples(Store(f"sqlite:///{args.eval_dir / 'voc.db'}"), predicted, ids)
    settings = Settings()
    blocks = problem_blocks(triples, EmbeddingCache(settings.embedding_cache_path), *knowledge_inputs(settings))
    scored = [i for i, voice_id in enumerate(ids) if str(gold.get(voice_id, {}).get("issue", "")).startswith("G")
              or gold.get(voice_id, {}).get("issue") == "single"]
    truth = [gold[ids[i]]["issue"] if gold[ids[i]]["issue"] != "single" else f"s{i}" for i in scored]
    rows = []
    for words, tag, group, owner, cut, attach in itertools.product(*GRID.values()):
        weights = Composition(words=words, tag=tag, group=group, owner=owner)
        vectors = composed(triples, blocks, weights)
        labels = settle_small_groups(cluster_labels(vectors, cut, 1500), vectors, 3, attach)
        guess = [int(labels[i]) if labels[i] >= 0 else -1 - i for i in scored]
        rows.append((adjusted_rand_score(truth, guess), _fragmentation(truth, guess),
                     sum(g < 0 for g in guess) / len(guess), weights, (cut, attach), int(labels.max()) + 1))
    for ari, frag, outliers, weights, (cut, attach), clusters in sorted(rows, key=lambda r: -r[0])[:15]:
        print(f"ARI {ari:.3f}  fragmentation {frag:.3f}  outliers {outliers:.1%}  clusters {clusters:3d}  cut {cut}  "
              f"attach {attach}  {weights.model_dump()}")


def _fragmentation(truth: list[str], guess: list[int]) -> float:
    shares = []
    for issue in {t for t in truth if t.startswith("G")}:
        mine = [g for t, g in zip(truth, guess, strict=True) if t == issue]
        top = Counter(g for g in mine if g >= 0).most_common(1)
        shares.append(top[0][1] / len(mine) if top else 0.0)
    return float(np.mean(shares)) if shares else 0.0


if __name__ == "__main__":
    main()
