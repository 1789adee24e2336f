"""Plain baselines the agents must beat: TF-IDF character n-grams + logistic regression."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline

MIN_PER_CLASS = 2


def tfidf_logreg(texts: list[str], labels: list[str], folds: int = 5) -> dict[str, Any]:
    """Cross-validated accuracy and macro-F1 on the gold set itself (classes too rare to split are
    left out and counted)."""
    counts = {label: labels.count(label) for label in set(labels)}
    keep = [i for i, label in enumerate(labels) if counts[label] >= max(MIN_PER_CLASS, 2)]
    x, y = [texts[i] for i in keep], [labels[i] for i in keep]
    splits = min(folds, min(counts[label] for label in y)) if y else 0
    if splits < 2:
        return {"n": len(y), "skipped": "too few examples per class"}
    started = time.perf_counter()
    model = make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True),
                          LogisticRegression(max_iter=2000, C=5.0))
    guess = cross_val_predict(model, x, y, cv=StratifiedKFold(splits, shuffle=True, random_state=0))
    return {"n": len(y), "left_out": len(labels) - len(y), "folds": splits,
            "accuracy": round(sum(g == t for g, t in zip(guess, y, strict=True)) / len(y), 4),
            "macro_f1": round(float(f1_score(y, guess, average="macro", zero_division=0)), 4),
            "seconds": round(time.perf_counter() - started, 2)}


def bertopic_clusters(texts: list[str], vectors: np.ndarray) -> tuple[list[int], list[list[str]], float] | None:
    """BERTopic over the analysis agent's own enhanced-text vectors with a jieba vectorizer: topic per
    text (-1 = outlier), topic keywords, seconds. None when the optional `topics` extra is missing."""
    try:
        from bertopic import BERTopic
        from hdbscan import HDBSCAN
        from umap import UMAP
    except ImportError:
        return None
    from sklearn.feature_extraction.text import CountVectorizer

    from agents.naming import tokens

    started = time.perf_counter()
    model = BERTopic(
        embedding_model=None, language="multilingual", calculate_probabilities=False,
        vectorizer_model=CountVectorizer(tokenizer=tokens, token_pattern=None, lowercase=False),
        umap_model=UMAP(n_neighbors=min(15, len(texts) - 1), n_components=5, metric="cosine", random_state=0),
        hdbscan_model=HDBSCAN(min_cluster_size=3, metric="euclidean", prediction_data=True))
    topics, _ = model.fit_transform(texts, embeddings=vectors)
    words = {topic: [w for w, _ in (model.get_topic(topic) or [])][:5] for topic in set(topics)}
    return [int(t) for t in topics], [words[t] for t in topics], time.perf_counter() - started
