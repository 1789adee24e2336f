"""The sentiment data: hand-written bank examples, the outside training sample and its disjoint held-out part."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from eval.datasets import DATASETS_DIR, LABEL_FIELDS, load_dataset
from voc.ingest_rows import normalize_text
from voc.models import Voice

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "knowledge" / "sentiment" / "bank_examples.yaml"
TRAIN = ROOT / "knowledge" / "sentiment" / "outside_train.jsonl"
PART_A = DATASETS_DIR / "outside_sentiment" / "part_a.jsonl"
SENTIMENTS = {"负面", "中性", "正面"}
SOURCES = ("ChnSentiCorp_htl_all", "waimai_10k", "online_shopping_10_cats")
# An unmasked phone, card or identity number (masked forms such as 138****5678 or 尾号1234 pass).
UNMASKED = re.compile(r"\d{11,}|\d{17}[\dXx]")


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def examples() -> list[dict[str, Any]]:
    return yaml.safe_load(EXAMPLES.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def train() -> list[dict[str, Any]]:
    return _jsonl(TRAIN)


@pytest.fixture(scope="module")
def part_a() -> list[dict[str, Any]]:
    return _jsonl(PART_A)


def test_bank_examples(examples: list[dict[str, Any]]) -> None:
    assert isinstance(examples, list)
    for item in examples:
        assert set(item) == {"text", "sentiment"}, item
        assert item["sentiment"] in SENTIMENTS, item
        assert isinstance(item["text"], str) and 4 <= len(item["text"]) <= 150, item
        assert item["text"] == item["text"].strip(), item
        assert not UNMASKED.search(item["text"]), item
    counts = Counter(item["sentiment"] for item in examples)
    assert 150 <= counts["负面"] <= 200 and 150 <= counts["中性"] <= 200 and 90 <= counts["正面"] <= 130, counts
    keys = Counter(normalize_text(item["text"]) for item in examples)
    assert not [k for k, n in keys.items() if n > 1]


def test_outside_train(train: list[dict[str, Any]]) -> None:
    for row in train:
        assert set(row) == {"id", "text", "sentiment", "source"}, row
        assert row["sentiment"] in {"正面", "负面"} and row["source"] in SOURCES, row
        assert 0 < len(row["text"]) <= 200 and row["text"].strip() == row["text"], row
    assert len({row["id"] for row in train}) == len(train)
    counts = Counter((row["source"], row["sentiment"]) for row in train)
    # 1,500 per corpus and class, except hotel negatives: ChnSentiCorp has only 1,827 of at most 200
    # characters, and the held-out sample takes its 500 first.
    expected = {(s, p): 1500 for s in SOURCES for p in ("正面", "负面")} | {("ChnSentiCorp_htl_all", "负面"): 1327}
    assert counts == expected


def test_outside_part_a(part_a: list[dict[str, Any]]) -> None:
    assert len({row["id"] for row in part_a}) == len(part_a)
    for row in part_a:
        assert row["labels"] == {"sentiment": row["labels"]["sentiment"]}, row  # sentiment only
        assert row["labels"]["sentiment"] in {"正面", "负面"}, row
        assert not set(row) & set(LABEL_FIELDS), row
        Voice.model_validate({k: v for k, v in row.items() if k != "labels"})
        assert 0 < len(row["text"]) <= 200, row
    counts = Counter((row["metadata"]["corpus"], row["labels"]["sentiment"]) for row in part_a)
    assert counts == {(s, p): 500 for s in SOURCES for p in ("正面", "负面")}
    shopping = Counter((row["metadata"]["category"], row["labels"]["sentiment"]) for row in part_a
                       if row["metadata"]["corpus"] == "online_shopping_10_cats")
    assert len(shopping) == 20 and set(shopping.values()) == {50}  # spread over the 10 categories


def test_part_a_loads_as_a_sentiment_only_dataset() -> None:
    dataset = load_dataset(str(PART_A))
    assert len(dataset.rows) == 3000 and dataset.current is not None
    assert dataset.labelled("sentiment") == 3000
    assert all(dataset.labelled(name) == 0 for name in ("issue", "owner", "dimension", "tag"))
    assert not any("labels" in row or "sentiment" in row for row in dataset.rows)


def test_no_text_twice_and_held_out_disjoint(examples: list[dict[str, Any]], train: list[dict[str, Any]],
                                             part_a: list[dict[str, Any]]) -> None:
    """No text (after the ingestor's normalisation) is in two rows, so none is both trained on and held out."""
    train_keys = [normalize_text(row["text"]) for row in train]
    held_keys = [normalize_text(row["text"]) for row in part_a]
    assert not set(train_keys) & set(held_keys)
    everything = Counter(train_keys + held_keys + [normalize_text(item["text"]) for item in examples])
    assert not [k for k, n in everything.items() if n > 1]
