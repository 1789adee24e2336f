"""Problems from voices: the standard's 超级嵌入 as vector composition, then average-linkage clustering.

A voice's vector is its cleaned text's e5 vector (embedded once, cached) beside weighted one-hot blocks
for its taxonomy tag, the tag's L2 group, its owner and its business. The cosine of two composed
vectors is the weighted mean of the text cosine and the field agreements, so the fields pull a
problem's voices together without a second model pass (KD-007 embeds an enhanced text instead, which
costs a second embedding of every voice and lets the field words dominate short texts).

e5 cosines sit in a narrow band (≈0.8–0.95 for any two Chinese complaints); the text block is
centred on the batch's mean before composing, which spreads related and unrelated pairs apart.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field
from sklearn.cluster import AgglomerativeClustering, KMeans

LEXICAL_DIMENSIONS = 128


class Composition(BaseModel):
    """Weights of the composed vector's blocks (squared weights are the shares of the cosine)."""

    # Chosen on gold_v1 with eval/tune_clustering.py (a plateau, not the sharpest peak); see docs/dev_notes.md.
    text: float = Field(default=1.0, ge=0)
    words: float = Field(default=0.7, ge=0, description="Lexical block: character n-grams of the cleaned text.")
    tag: float = Field(default=0.3, ge=0)
    group: float = Field(default=0.2, ge=0, description="The tag's L1>L2 group.")
    owner: float = Field(default=0.3, ge=0)
    business: float = Field(default=0.0, ge=0)


def normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.asarray(matrix / np.where(norms == 0, 1, norms))


def one_hot(values: Sequence[str]) -> np.ndarray:
    index = {value: i for i, value in enumerate(sorted(set(values)))}
    matrix = np.zeros((len(values), max(1, len(index))), dtype=np.float32)
    for row, value in enumerate(values):
        matrix[row, index[value]] = 1.0
    return matrix


def centred(vectors: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Unit vectors minus a reference mean direction, renormalised: the shared "Chinese complaint"
    component that makes every pair look alike is removed. The reference should not depend on the
    week's mix (a week where one problem dominates would otherwise centre that problem away): the
    analysis agent passes the mean of the data dictionary's example voices, one scene as much as another."""
    basis = vectors if reference is None else reference
    if len(basis) < 2:
        return normalise(vectors)
    return normalise(vectors - basis.mean(axis=0, keepdims=True))


def lexical(texts: Sequence[str], fit: int | None = None, dimensions: int = LEXICAL_DIMENSIONS) -> np.ndarray:
    """Character 2–3-grams (TF-IDF) of the cleaned texts, reduced to a dense block: the problem words
    customers share (验证码, 闪退, 年费) weigh here even where the embedding finds two texts merely alike.
    Fitted on the first `fit` texts (the period analysed), applied to all."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    basis = list(texts[:fit])
    if len(basis) < 3:
        return np.zeros((len(texts), 1), dtype=np.float32)
    tfidf = TfidfVectorizer(analyzer="char", ngram_range=(2, 3), min_df=2, sublinear_tf=True).fit(basis)
    matrix = tfidf.transform(basis)
    components = min(dimensions, matrix.shape[1] - 1, len(basis) - 1)
    if components < 2:
        return np.zeros((len(texts), 1), dtype=np.float32)
    svd = TruncatedSVD(n_components=components, random_state=0).fit(matrix)
    return normalise(svd.transform(tfidf.transform(texts)))


def compose(text: np.ndarray, tags: Sequence[str], owners: Sequence[str], businesses: Sequence[str],
            weights: Composition, words: np.ndarray | None = None, reference: np.ndarray | None = None) -> np.ndarray:
    """`reference`: the e5 vectors whose mean is taken out of the text block (see `centred`)."""
    blocks = [weights.text * centred(text, reference)]
    if weights.words > 0 and words is not None:
        blocks.append(weights.words * words)
    for weight, values in ((weights.tag, tags), (weights.group, [">".join(t.split(">")[:2]) for t in tags]),
                           (weights.owner, owners), (weights.business, businesses)):
        if weight > 0:
            blocks.append(weight * one_hot(values))
    return normalise(np.hstack(blocks).astype(np.float32))


def cluster_labels(vectors: np.ndarray, distance: float, coarse_group_size: int) -> np.ndarray:
    """Deterministic clusters of unit vectors (rows in a canonical order): average linkage under a
    cosine cut; large inputs are first split into coarse k-means groups and re-joined across them."""
    if len(vectors) <= 1:
        return np.zeros(len(vectors), dtype=int)
    if len(vectors) <= coarse_group_size:
        return _agglomerate(vectors, distance)
    groups = math.ceil(len(vectors) / coarse_group_size)
    coarse = KMeans(n_clusters=groups, n_init=1, random_state=0).fit_predict(vectors)
    labels = np.zeros(len(vectors), dtype=int)
    offset = 0
    for group in range(groups):
        members = np.flatnonzero(coarse == group)
        if len(members) == 0:
            continue
        local = _agglomerate(vectors[members], distance) if len(members) > 1 else np.zeros(1, int)
        labels[members] = local + offset
        offset += int(local.max()) + 1
    return merge_close(labels, vectors, distance)


def merge_close(labels: np.ndarray, vectors: np.ndarray, distance: float) -> np.ndarray:
    """Join clusters whose centroids are within the cut (a coarse split can cut one problem in two)."""
    ids = np.unique(labels[labels >= 0])
    if len(ids) < 2:
        return labels
    centroids = normalise(np.vstack([vectors[labels == i].mean(axis=0) for i in ids]))
    mapping = dict(zip(ids.tolist(), _agglomerate(centroids, distance).tolist(), strict=True))
    return np.asarray([mapping[int(x)] if x >= 0 else -1 for x in labels], dtype=int)


def _agglomerate(vectors: np.ndarray, distance: float) -> np.ndarray:
    model = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average", distance_threshold=distance)
    return np.asarray(model.fit_predict(vectors))


def settle_small_groups(labels: np.ndarray, vectors: np.ndarray, min_size: int, attach: float) -> np.ndarray:
    """Groups below the minimum size join the most similar cluster if close enough, else become
    outliers (-1). Returns labels renumbered by (size desc, first member)."""
    sizes = Counter(labels.tolist())
    big = sorted(label for label, size in sizes.items() if size >= min_size)
    result = np.full(len(labels), -1, dtype=int)
    if not big:
        return result
    centroids = normalise(np.vstack([vectors[labels == b].mean(axis=0) for b in big]))
    for index, label in enumerate(labels):
        if sizes[label] >= min_size:
            result[index] = big.index(label)
            continue
        similarity = centroids @ vectors[index]
        best = int(np.argmax(similarity))
        if similarity[best] >= attach:
            result[index] = best
    return canonical(result)


def canonical(labels: np.ndarray) -> np.ndarray:
    order = sorted({int(x) for x in labels if x >= 0},
                   key=lambda c: (-int((labels == c).sum()), int(np.flatnonzero(labels == c)[0])))
    mapping = {old: new for new, old in enumerate(order)}
    return np.asarray([mapping.get(int(x), -1) for x in labels], dtype=int)
