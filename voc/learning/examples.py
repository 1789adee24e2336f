"""Where the learned layer's labels come from, each source with its weight.

- the knowledge base: the data dictionary's example voices (tag, hence dimension), the service
  matrix's example utterances (owner) and the hand-written bank sentiment examples;
- public sentiment corpora (hotel, food-delivery and shopping reviews: real text, another domain,
  so they count less than bank text);
- a bank's labelled history (`voc learn history.csv`);
- the analysts' corrections from the review queue, which count most: they are this bank's own
  voices, labelled by the people who route its work.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from voc.contracts import Sentiment
from voc.kb_models import ServiceMatrix, Taxonomy
from voc.models import Business, Channel
from voc.pii import mask_text
from voc.text import simplified

WEIGHT_KNOWLEDGE = 1.0
WEIGHT_OUTSIDE = 0.3
WEIGHT_HISTORY = 1.0
WEIGHT_CORRECTION = 3.0

SENTIMENT_DIR = "sentiment"
BANK_SENTIMENT_FILE = "bank_examples.yaml"
OUTSIDE_SENTIMENT_FILE = "outside_train.jsonl"


@dataclass(frozen=True)
class LabelledVoice:
    """One training example; a label left None is unknown for this example, not "none"."""

    text: str
    source: str
    weight: float = 1.0
    channel: Channel | None = None
    business: Business | None = None
    owner: str | None = None
    tag: str | None = None
    sentiment: Sentiment | None = None

    @property
    def masked_text(self) -> str:
        """No example may carry personal data into a model, a vector or a cache."""
        return mask_text(self.text)

    @property
    def clean_text(self) -> str:
        """What the n-gram and rule features see: masked and in simplified characters."""
        return simplified(self.masked_text)


def from_taxonomy(taxonomy: Taxonomy) -> list[LabelledVoice]:
    return [LabelledVoice(text=example, source="taxonomy", weight=WEIGHT_KNOWLEDGE, tag=tag.path)
            for tag in taxonomy.tags for example in tag.examples]


def from_matrix(matrix: ServiceMatrix) -> list[LabelledVoice]:
    """The matrix's example utterances. A voice arrives with its business (and channel) filled in,
    so each example is given every business its entry serves, its weight shared among the copies:
    the model then learns how much "this owner serves this business" is worth."""
    voices = []
    for entry in matrix.entries:
        businesses: list[Business | None] = [Business(b) for b in entry.business if b != "*"] or [None]
        channel = entry.channels[0] if len(entry.channels) == 1 and entry.channels[0] != "*" else None
        voices += [LabelledVoice(text=example, source="matrix", weight=WEIGHT_KNOWLEDGE / len(businesses),
                                 owner=entry.owner, business=business, channel=Channel(channel) if channel else None)
                   for example in entry.examples for business in businesses]
    return voices


def from_sentiment_files(knowledge_dir: Path) -> list[LabelledVoice]:
    """The bank sentiment examples and the public corpora's training sample, where present."""
    folder = knowledge_dir / SENTIMENT_DIR
    voices: list[LabelledVoice] = []
    bank = folder / BANK_SENTIMENT_FILE
    if bank.exists():
        items = yaml.safe_load(bank.read_text(encoding="utf-8")) or []
        voices += [LabelledVoice(text=str(i["text"]), source="bank_sentiment", weight=WEIGHT_KNOWLEDGE,
                                 sentiment=Sentiment(i["sentiment"])) for i in items]
    outside = folder / OUTSIDE_SENTIMENT_FILE
    if outside.exists():
        rows = [json.loads(line) for line in outside.read_text(encoding="utf-8").splitlines() if line.strip()]
        voices += [LabelledVoice(text=r["text"], source=f"outside:{r.get('source', 'corpus')}",
                                 weight=WEIGHT_OUTSIDE, sentiment=Sentiment(r["sentiment"])) for r in rows]
    return voices


def knowledge_examples(taxonomy: Taxonomy, matrix: ServiceMatrix, knowledge_dir: Path) -> list[LabelledVoice]:
    return [*from_taxonomy(taxonomy), *from_matrix(matrix), *from_sentiment_files(knowledge_dir)]


def counts_by_source(voices: Iterable[LabelledVoice]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for voice in voices:
        key = voice.source.split(":")[0]
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
