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


@dataclass
class LabelModel:
    featurizer: Featurizer
    regularisation: float = 4.0
    classes: list[str] = field(default_factory=list)
    model: LogisticRegression | None = None
    calibrator: IsotonicRegression | None = None
    validation: CrossValidation | None = None

    def fit(self, inputs: Inputs, labels: list[str], weights: np.ndarray, calibrate: np.ndarray) -> LabelModel:
        """Train on every example; calibrate on the out-of-fold predictions of the `calibrate` rows
        (the bank's own text: outside corpora would teach the confidence of another domain)."""
        self.featurizer.fit(inputs)
        features = self.featurizer.transform(inputs)
        target = np.asarray(labels)
        self.model = self._new().fit(features, target, sample_weight=weights)
        self.classes = [str(c) for c in self.model.classes_]
        folds = _folds(target)
        if folds < 2:
            return self
        top, right = self._out_of_fold(inputs, target, weights, folds)
        mask = calibrate.astype(bool)
        self.calibrator = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(top[mask], right[mask])
        self.validation = CrossValidation(accuracy=round(float(right[mask].mean()), 4), examples=len(labels),
                                          calibrated_on=int(mask.sum()),
                                          curve=review_curve(self.calibrator.predict(top[mask]), right[mask]))
        return self

    def predict(self, inputs: Inputs, top_k: int = 3) -> list[Prediction]:
        if self.model is None or len(inputs) == 0:
            return []
        probabilities = self.model.predict_proba(self.featurizer.transform(inputs))
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

    def probabilities(self, inputs: Inputs) -> np.ndarray:
        assert self.model is not None
        return np.asarray(self.model.predict_proba(self.featurizer.transform(inputs)))

    def _new(self) -> LogisticRegression:
        # newton-cg: a tenth of lbfgs's time on these wide sparse features, the same optimum.
        return LogisticRegression(C=self.regularisation, solver="newton-cg", max_iter=300, random_state=SEED)

    def _out_of_fold(self, inputs: Inputs, target: np.ndarray, weights: np.ndarray,
                     folds: int) -> tuple[np.ndarray, np.ndarray]:
        top = np.zeros(len(target))
        right = np.zeros(len(target))
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "the least populated class has only n members"
            splits = list(splitter.split(np.zeros(len(target)), target))
        for train, test in splits:
            part = Featurizer(self.featurizer.rules, self.featurizer.use_vectors, self.featurizer.use_lexicon)
            part.fit(_subset(inputs, train))
            model = self._new().fit(part.transform(_subset(inputs, train)), target[train],
                                    sample_weight=weights[train])
            probabilities = model.predict_proba(part.transform(_subset(inputs, test)))
            top[test] = probabilities.max(axis=1)
            right[test] = model.classes_[probabilities.argmax(axis=1)] == target[test]
        return top, right


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


def _subset(inputs: Inputs, rows: np.ndarray) -> Inputs:
    return Inputs(texts=[inputs.texts[i] for i in rows], channels=[inputs.channels[i] for i in rows],
                  businesses=[inputs.businesses[i] for i in rows],
                  vectors=None if inputs.vectors is None else inputs.vectors[rows])
