"""CI gate: the offline engine's scorecard on the gold set must meet eval/thresholds.yaml."""

import asyncio
import importlib.util
import json
from pathlib import Path

import pytest

from eval.datasets import load_dataset
from eval.harness import THRESHOLDS, evaluate
from voc.config import Settings

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("name", "rows"), [("gold_v1", 600), ("gold_v2", 500)])
def test_gold_scorecard_meets_the_gate(tmp_path: Path, name: str, rows: int) -> None:
    """gold_v1 is the set the engine was tuned on; gold_v2 is held out (written after the 4/6 design
    was fixed, never used for tuning). The gate holds on both."""
    dataset = load_dataset(name)
    assert len(dataset.rows) >= rows
    card = asyncio.run(evaluate(dataset, "offline", tmp_path / "out", Settings(data_dir=tmp_path / "data")))
    assert THRESHOLDS.is_file() and card["gate"]["checked"] >= 10
    assert card["gate"]["passed"], json.dumps(card["gate"]["failures"], ensure_ascii=False)
    assert (tmp_path / "out" / "scorecard.md").read_text(encoding="utf-8").startswith("# Scorecard")
    assert not any("labels" in row or "sentiment" in row for row in dataset.rows)  # labels never reach the store
    baselines = card["baselines"]
    assert baselines["tfidf_logreg_dimension"]["accuracy"] and baselines["tfidf_logreg_owner"]["accuracy"]
    if importlib.util.find_spec("bertopic") is not None:  # installed by `make` (the topics extra)
        assert baselines["bertopic_clustering"]["ari"] is not None, baselines["bertopic_clustering"]
