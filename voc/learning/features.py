"""Features of the learned layer, all of which exist before it: the text's character n-grams, its
cached e5 vector, the service matrix's and the data dictionary's keyword rules, the similarity to
each label's definition, the lexicon's sentiment scores, and the voice's channel and business.
Rules become features here: the classifier learns how much each is worth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from voc.lexicon import analyse
from voc.models import Business, Channel

CHANNELS = list(Channel)
BUSINESSES = list(Business)
# e5 cosine similarities sit in a narrow band: the distance below the best label carries the
# information, sharpened so that a few hundredths matter.
ANCHOR_SHARPNESS = 20.0


@dataclass(frozen=True)
class Inputs:
    """A batch of voices as the featurizer sees them (texts already masked and simplified)."""

    texts: list[str]
    channels: list[Channel | None]
    businesses: list[Business | None]
    vectors: np.ndarray | None = None  # (n, 384) e5 query vectors, when the model uses them

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class RuleGroups:
    """Rule evidence per label: its keywords, the businesses it serves, and vectors of what defines it
    (several anchors may belong to one label: the owner's matrix entries)."""

    labels: list[str]
    keywords: list[list[str]]
    businesses: list[set[str]] = field(default_factory=list)
    anchors: np.ndarray | None = None
    anchor_label: list[int] = field(default_factory=list)


@dataclass
class Featurizer:
    rules: RuleGroups | None
    use_vectors: bool
    use_lexicon: bool
    ngrams: TfidfVectorizer = field(default_factory=lambda: TfidfVectorizer(
        analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True, max_features=80000, dtype=np.float32))

    def fit(self, inputs: Inputs) -> Featurizer:
        self.ngrams.fit(inputs.texts)
        return self

    def transform(self, inputs: Inputs) -> sparse.csr_matrix:
        blocks: list[sparse.spmatrix | np.ndarray] = [self.ngrams.transform(inputs.texts), _context(inputs)]
        if self.use_vectors:
            if inputs.vectors is None:
                raise ValueError("this model needs the voices' e5 vectors")
            blocks.append(inputs.vectors.astype(np.float32))
        if self.rules is not None:
            blocks += _rule_blocks(self.rules, inputs)
        if self.use_lexicon:
            blocks.append(_lexicon(inputs))
        return sparse.hstack([sparse.csr_matrix(b) for b in blocks], format="csr", dtype=np.float32)


def _context(inputs: Inputs) -> np.ndarray:
    out = np.zeros((len(inputs), len(CHANNELS) + len(BUSINESSES)), dtype=np.float32)
    for row, (channel, business) in enumerate(zip(inputs.channels, inputs.businesses, strict=True)):
        if channel is not None:
            out[row, CHANNELS.index(channel)] = 1.0
        if business is not None:
            out[row, len(CHANNELS) + BUSINESSES.index(business)] = 1.0
    return out


def _rule_blocks(rules: RuleGroups, inputs: Inputs) -> list[np.ndarray]:
    hits = np.array([[min(1.0, 0.5 * _keyword_hits(text, words)) for words in rules.keywords]
                     for text in inputs.texts], dtype=np.float32).reshape(len(inputs), len(rules.labels))
    blocks = [hits]
    if rules.businesses:
        blocks.append(np.array([[1.0 if b is not None and str(b) in served else 0.0 for served in rules.businesses]
                                for b in inputs.businesses], dtype=np.float32).reshape(len(inputs), -1))
    if rules.anchors is not None and inputs.vectors is not None:
        blocks.append(_anchor_similarity(rules, inputs.vectors))
    return blocks


def _keyword_hits(text: str, words: Sequence[str]) -> float:
    # Longer keywords are more specific: "验证码收不到" says more than "卡".
    return sum(1.5 if len(w) >= 4 else 1.0 if len(w) >= 2 else 0.5 for w in words if w and w in text)


def _anchor_similarity(rules: RuleGroups, vectors: np.ndarray) -> np.ndarray:
    assert rules.anchors is not None
    similarity = vectors @ rules.anchors.T
    per_label = np.full((len(vectors), len(rules.labels)), -1.0, dtype=np.float32)
    for column, label in enumerate(rules.anchor_label):
        per_label[:, label] = np.maximum(per_label[:, label], similarity[:, column])
    best = per_label.max(axis=1, keepdims=True) if len(vectors) else per_label
    return np.exp(ANCHOR_SHARPNESS * (per_label - best)).astype(np.float32)


def _lexicon(inputs: Inputs) -> np.ndarray:
    rows = []
    for text, channel in zip(inputs.texts, inputs.channels, strict=True):
        result = analyse(text, str(channel) if channel else "")
        verdict = [1.0 if result.sentiment == s else 0.0 for s in ("负面", "中性", "正面")]
        rows.append([*verdict, float(np.tanh(result.score / 3)), result.intensity / 5, float(len(result.signals) > 0),
                     min(len(text), 200) / 200])
    return np.asarray(rows, dtype=np.float32).reshape(len(inputs), 7)
