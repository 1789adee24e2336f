"""The learned layer of the offline engine: owner, tag (and so dimension) and sentiment models,
trained on every labelled source, stored in the data directory under a version that is the hash of
what they were trained on. The same examples, rules and code version give the same model, so a
stored model is reused until a source changes (a correction, a history upload, a knowledge edit)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np

from voc.learning.classifier import LabelModel, Prediction, Prior
from voc.learning.examples import LabelledVoice, counts_by_source
from voc.learning.features import Featurizer, Inputs, RuleGroups

# Bump when features or model settings change: a stored model of another version is retrained.
LAYER_VERSION = "2"
MODELS_DIR = "models"
CURRENT_FILE = "learned.json"
MIN_EXAMPLES = 20
# The owner model's share against the matrix rules grows with the owner labels of the bank's own
# voices (history, corrections): half at this many. Example utterances written for the matrix
# alone teach less than its rules already know (measured on gold_v1: 70% against 78%).
OWNER_TRUST_HALF = 500
IN_DOMAIN = ("history", "correction")

log = logging.getLogger(__name__)
# Masked texts → their e5 query vectors, exactly as the voices to judge are embedded.
Embed = Callable[[list[str]], np.ndarray]
# Examples → the matrix rules' owner shares for them.
OwnerPrior = Callable[[list[LabelledVoice]], Prior]


@dataclass(frozen=True)
class Judgement:
    """What the learned layer says about one voice; None where it has no model for that label."""

    owner: Prediction | None
    tag: Prediction | None
    dimension: tuple[str, float] | None
    sentiment: Prediction | None


@dataclass
class LearnedLayer:
    version: str
    trained_at: str
    sources: dict[str, int]
    tag_dimension: dict[str, str]
    owner: LabelModel | None = None
    tag: LabelModel | None = None
    sentiment: LabelModel | None = None
    notes: list[str] = field(default_factory=list)

    def judge(self, inputs: Inputs, top_k: int = 3,
              labels: frozenset[str] = frozenset({"owner", "tag", "sentiment"}),
              owner_prior: Prior | None = None) -> list[Judgement]:
        """The layer's labels for a batch; `labels` names the ones wanted (the rest stay None)."""
        none: list[None] = [None] * len(inputs)
        owners = self.owner.predict(inputs, top_k, owner_prior) if self.owner and "owner" in labels else none
        tags: list[tuple[Prediction, tuple[str, float]]] | list[None] = (
            self._tags(inputs, top_k) if self.tag and "tag" in labels else none)
        feelings = self.sentiment.predict(inputs, top_k) if self.sentiment and "sentiment" in labels else none
        return [Judgement(owner, pair[0] if pair else None, pair[1] if pair else None, feeling)
                for owner, pair, feeling in zip(owners, tags, feelings, strict=True)]

    def _tags(self, inputs: Inputs, top_k: int) -> list[tuple[Prediction, tuple[str, float]]]:
        """The dimension is chosen first, as the sum of its tags' probabilities; the tag is the best
        one inside it. Tag and dimension never disagree, and a voice split between three tags of one
        dimension is not given a lone tag of another."""
        assert self.tag is not None
        probabilities = self.tag.probabilities(inputs)
        names = sorted(set(self.tag_dimension.values()))
        of_class = np.array([names.index(self.tag_dimension[c]) for c in self.tag.classes])
        out = []
        for row in probabilities:
            per_dimension = np.bincount(of_class, weights=row, minlength=len(names))
            dimension = int(per_dimension.argmax())
            inside = np.where(of_class == dimension, row, -1.0)
            best = int(inside.argmax())
            rest = [int(i) for i in np.argsort(-row, kind="stable") if int(i) != best][: top_k - 1]
            ranked = [(self.tag.classes[i], round(float(row[i]), 4)) for i in [best, *rest]]
            out.append((Prediction(label=ranked[0][0], confidence=self.tag.calibrated(float(row[best])), ranked=ranked),
                        (names[dimension], round(float(per_dimension[dimension]), 4))))
        return out

    def summary(self) -> dict[str, object]:
        def validation(model: LabelModel | None) -> dict[str, object] | None:
            if model is None or model.validation is None:
                return None
            v = model.validation
            return {"cv_accuracy": v.accuracy, "examples": v.examples, "calibrated_on": v.calibrated_on,
                    "labels": len(model.classes), "trust": model.trust, "review_curve": v.curve}

        return {"version": self.version, "trained_at": self.trained_at, "sources": self.sources,
                "owner": validation(self.owner), "tag": validation(self.tag),
                "sentiment": validation(self.sentiment), "notes": self.notes}


def fingerprint(examples: list[LabelledVoice], owner_rules: RuleGroups, tag_rules: RuleGroups) -> str:
    digest = hashlib.sha256(LAYER_VERSION.encode())
    for voice in examples:
        digest.update(json.dumps([voice.text, voice.source, voice.weight, voice.channel, voice.business,
                                  voice.owner, voice.tag, voice.sentiment], ensure_ascii=False).encode())
    for rules in (owner_rules, tag_rules):
        digest.update(json.dumps([rules.labels, rules.keywords, [sorted(b) for b in rules.businesses]],
                                 ensure_ascii=False).encode())
        if rules.anchors is not None:
            digest.update(np.round(rules.anchors, 4).tobytes())
    return digest.hexdigest()[:16]


def train(examples: list[LabelledVoice], owner_rules: RuleGroups, tag_rules: RuleGroups,
          tag_dimension: dict[str, str], embed: Embed, owner_prior: OwnerPrior | None = None) -> LearnedLayer:
    layer = LearnedLayer(version=fingerprint(examples, owner_rules, tag_rules),
                         trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
                         sources=counts_by_source(examples), tag_dimension=tag_dimension)
    owned = [e for e in examples if e.owner]
    in_domain = sum(e.source in IN_DOMAIN for e in owned)
    layer.owner = _train_one(layer, "owner", owned, lambda e: e.owner,
                             Featurizer(owner_rules, use_vectors=True, use_lexicon=False), embed,
                             trust=in_domain / (in_domain + OWNER_TRUST_HALF),
                             prior=owner_prior(owned) if owner_prior else None)
    layer.tag = _train_one(layer, "tag", [e for e in examples if e.tag in tag_dimension], lambda e: e.tag,
                           Featurizer(tag_rules, use_vectors=True, use_lexicon=False), embed)
    layer.sentiment = _train_one(layer, "sentiment", [e for e in examples if e.sentiment], lambda e: e.sentiment,
                                 Featurizer(None, use_vectors=False, use_lexicon=True), embed)
    return layer


def _train_one(layer: LearnedLayer, name: str, examples: list[LabelledVoice],
               label: Callable[[LabelledVoice], str | None], featurizer: Featurizer, embed: Embed,
               trust: float = 1.0, prior: Prior | None = None) -> LabelModel | None:
    labels = [str(label(e)) for e in examples]
    if len(examples) < MIN_EXAMPLES or len(set(labels)) < 2:
        layer.notes.append(f"{name}: {len(examples)} labelled examples, too few to learn from; rules decide")
        return None
    inputs = Inputs(texts=[e.clean_text for e in examples], channels=[e.channel for e in examples],
                    businesses=[e.business for e in examples],
                    vectors=embed([e.masked_text for e in examples]) if featurizer.use_vectors else None)
    weights = np.array([e.weight for e in examples], dtype=float)
    calibrate = np.array([not e.source.startswith("outside") for e in examples])
    return LabelModel(featurizer, trust=round(trust, 4) if prior is not None else 1.0).fit(
        inputs, labels, weights, calibrate, prior)


def load_or_train(models_dir: Path, examples: list[LabelledVoice], owner_rules: RuleGroups, tag_rules: RuleGroups,
                  tag_dimension: dict[str, str], embed: Embed, owner_prior: OwnerPrior | None = None) -> LearnedLayer:
    """The stored layer for exactly these sources, or a new one trained and stored now."""
    version = fingerprint(examples, owner_rules, tag_rules)
    path = models_dir / f"learned-{version}.joblib"
    if path.exists():
        try:
            layer = joblib.load(path)
            if isinstance(layer, LearnedLayer):
                return layer
        except Exception:  # a damaged or foreign file is replaced by a model trained now
            log.warning("stored model %s cannot be read; training again", path)
    layer = train(examples, owner_rules, tag_rules, tag_dimension, embed, owner_prior)
    save(models_dir, layer)
    return layer


def save(models_dir: Path, layer: LearnedLayer) -> Path:
    models_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = models_dir / f"learned-{layer.version}.joblib"
    temporary = path.with_suffix(".tmp")
    joblib.dump(layer, temporary)
    temporary.replace(path)
    (models_dir / CURRENT_FILE).write_text(json.dumps(layer.summary(), ensure_ascii=False, indent=2),
                                          encoding="utf-8")
    for old in models_dir.glob("learned-*.joblib"):
        if old != path:
            old.unlink(missing_ok=True)  # one model in use; its sources can always train it again
    return path


def current_summary(models_dir: Path) -> dict[str, object] | None:
    path = models_dir / CURRENT_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
