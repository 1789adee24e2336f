"""Choose the analysis agent's clustering settings on gold_v1 (never on gold_v2, the held-out set).

Reads a finished `voc eval --dataset gold_v1` (its store and its run's labels), so the voices, tags
and owners are exactly what the analysis agent saw; only the composition weights and the cut vary.
Prints ARI, fragmentation and outlier rate per setting, best first:

    python -m eval.tune_clustering --eval-dir DATA_DIR/eval/gold_v1 --run-dir OUT/run
"""

from __future__ import annotations

import argparse
import itertools
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

from agents.clustering import Composition, cluster_labels, compose, lexical, settle_small_groups
from agents.problem_text import Boilerplate
from eval.datasets import load_dataset
from voc.config import Settings
from voc.contracts import Sentiment, read_voices
from voc.embeddings import EmbeddingCache
from voc.knowledge import load_boilerplate, load_taxonomy
from voc.storage import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path, required=True)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--kind", choices=("passage", "query"), default="passage", help="e5 prefix of the text")
    args = parser.parse_args()
    dataset = load_dataset("gold_v1")
    results = [r for r in read_voices(args.run_dir) if r.sentiment is Sentiment.NEGATIVE]
    results.sort(key=lambda r: r.id)
    store = Store(f"sqlite:///{args.eval_dir / 'voc.db'}")
    voices = {r.id: store.get_voice(r.id) for r in results}
    listed = load_boilerplate(Settings().knowledge_dir / "boilerplate.yaml")
    floor = Boilerplate(tuple(listed.phrases), tuple(listed.fillers))
    texts = [voices[r.id].text for r in results]  # type: ignore[union-attr]
    cleaner = floor.with_learned(texts, [r.tag for r in results])
    cache = EmbeddingCache(Settings().embedding_cache_path)
    cleaned = [cleaner.clean(t) for t in texts]
    vectors = cache.embed(cleaned, args.kind)
    words = lexical(cleaned)
    reference = cache.embed([e for t in load_taxonomy(Settings().taxonomy_path).tags for e in t.examples], "query")
    gold = dataset.labels
    scored = [i for i, r in enumerate(results) if str(gold.get(r.id, {}).get("issue", "")).startswith("G")
              or gold.get(r.id, {}).get("issue") == "single"]
    truth = [gold[results[i].id]["issue"] if gold[results[i].id]["issue"] != "single" else f"s{i}" for i in scored]
    rows = []
    for words_w, tag_w, group_w, owner_w, business_w, cut, attach in itertools.product(
            (0.3, 0.5, 0.7), (0.2, 0.3, 0.5), (0.2, 0.3, 0.5), (0.3,), (0.0,), (0.65, 0.75, 0.85), (0.1, 0.15, 0.2)):
        weights = Composition(text=1.0, words=words_w, tag=tag_w, group=group_w, owner=owner_w, business=business_w)
        composed = compose(vectors, [r.tag for r in results], [r.owner_department for r in results],
                           [str(voices[r.id].business or "") for r in results], weights, words, reference)  # type: ignore[union-attr]
        labels = settle_small_groups(cluster_labels(composed, cut, 1500), composed, 3, attach)
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
