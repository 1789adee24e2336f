"""One learned label (owner, tag or sentiment): a logistic regression over the features, with a
confidence that is a calibrated probability of being right.

The calibration is learned on out-of-fold predictions: each training example is predicted by a
model that did not see it, and an isotonic map turns the top class's probability into the share of
such predictions that were right. The same out-of-fold predictions give the cross-validated
accuracy that `voc learn` reports."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from voc.learning.features import Featurizer, Inputs

FOLDS = 5
SEED = 20261201


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float  # calibrated probability that `label` is right
    ranked: list[tuple[str, float]]  # the best labels with the model's probabilities


@dataclass
class CrossValidation:
    accuracy: float
    examples: int
    calibrated_on: int
    # (threshold, share sent to review, accuracy of the rest), for the review curve
    curve: list[tuple[float, float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Prior:
    """Rule evidence as probabilities over `labels`, one row per voice: what the model's answer is
    blended with, `trust` being the model's share."""

    labels: list[str]
    rows: np.ndarray

    def aligned(self, classes: list[str]) -> np.ndarray:
        out = np.zeros((len(self.rows), len(classes)))
        for column, label in enumerate(classes):
            if label in self.labels:
                out[:, column] = self.rows[:, self.labels.index(label)]
        return out


@dataclass
class LabelModel:
    featurizer: Featurizer
    regularisation: float = 4.0
    trust: float = 1.0  # the model's share when blended with a prior
    classes: list[str] = field(default_factory=list)
    model: LogisticRegression | None = None
    calibrator: IsotonicRegression | None = None
    validation: CrossValidation | None = None

    def fit(self, inputs: Inputs, labels: list[str], weights: np.ndarray, calibrate: np.ndarray,
            prior: Prior | None = None) -> LabelModel:
        """Train on every example; calibrate on the out-of-fold predictions of the `calibrate` rows
        (the bank's own text: outside corpora would teach the confidence of another domain).
        The n-gram vocabulary is fitted once on all texts: it uses no label, and refitting it per
        fold would cost more than the folds' models."""
        self.featurizer.fit(inputs)
        features = self.featurizer.transform(inputs)
        target = np.asarray(labels)
        self.model = self._new().fit(features, target, sample_weight=weights)
        self.classes = [str(c) for c in self.model.classes_]
        folds = _folds(target)
        if folds < 2:
            return self
        blended = self._blend(self._out_of_fold(features, target, weights, folds), prior)
        top = blended.max(axis=1)
        right = np.asarray(self.classes)[blended.argmax(axis=1)] == target
        mask = calibrate.astype(bool)
        self.calibrator = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(top[mask], right[mask])
        self.validation = CrossValidation(accuracy=round(float(right[mask].mean()), 4), examples=len(labels),
                                          calibrated_on=int(mask.sum()),
                                          curve=review_curve(self.calibrator.predict(top[mask]), right[mask]))
        return self

    def predict(self, inputs: Inputs, top_k: int = 3, prior: Prior | None = None) -> list[Prediction]:
        if self.model is None or len(inputs) == 0:
            return []
        probabilities = self.probabilities(inputs, prior)
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
        best = probabilities[np.arange(len(inputs)), order[:, 0]]
        confidence = self.calibrator.predict(best) if self.calibrator is not None else best
        return [Prediction(label=self.classes[row[0]], confidence=round(float(c), 4),
                           ranked=[(self.classes[i], round(float(p[i]), 4)) for i in row])
                for row, p, c in zip(order, probabilities, confidence, strict=True)]

    def calibrated(self, probability: float) -> float:
        if self.calibrator is None:
            return round(probability, 4)
        return round(float(self.calibrator.predict(np.array([probability]))[0]), 4)

    def probabilities(self, inputs: Inputs, prior: Prior | None = None) -> np.ndarray:
        assert self.model is not None
        return self._blend(np.asarray(self.model.predict_proba(self.featurizer.transform(inputs))), prior)

    def _blend(self, probabilities: np.ndarray, prior: Prior | None) -> np.ndarray:
        if prior is None or self.trust >= 1.0:
            return probabilities
        return self.trust * probabilities + (1 - self.trust) * prior.aligned(self.classes)

    def _new(self) -> LogisticRegression:
        # newton-cg: a tenth of lbfgs's time on these wide sparse features, the same optimum.
        return LogisticRegression(C=self.regularisation, solver="newton-cg", max_iter=300, random_state=SEED)

    def _out_of_fold(self, features: sparse.csr_matrix, target: np.ndarray, weights: np.ndarray,
                     folds: int) -> np.ndarray:
        """Each example's probabilities from a model that did not see it (columns: self.classes)."""
        out = np.zeros((len(target), len(self.classes)))
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "the least populated class has only n members"
            splits = list(splitter.split(np.zeros(len(target)), target))
        for train, test in splits:
            model = self._new().fit(features[train], target[train], sample_weight=weights[train])
            columns = [self.classes.index(str(c)) for c in model.classes_]
            out[np.ix_(test, columns)] = model.predict_proba(features[test])
        return out


def review_curve(confidence: np.ndarray, right: np.ndarray,
                 thresholds: tuple[float, ...] = tuple(np.round(np.arange(0.0, 1.0, 0.05), 2))
                 ) -> list[tuple[float, float, float]]:
    """For each threshold: the share below it (sent to review) and the accuracy of the rest."""
    curve = []
    for threshold in thresholds:
        kept = confidence >= threshold
        accuracy = float(right[kept].mean()) if kept.any() else 1.0
        curve.append((float(threshold), round(float(1 - kept.mean()), 4), round(accuracy, 4)))
    return curve


def _folds(target: np.ndarray) -> int:
    """A label seen fewer times than there are folds is simply missing from some folds' training."""
    _, counts = np.unique(target, return_counts=True)
    return int(min(FOLDS, counts.max())) if len(counts) > 1 else 0
