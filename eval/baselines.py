"""Plain baselines the agents must beat: TF-IDF character n-grams + logistic regression."""

from __future__ import annotations

import time
from typing import Any

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
