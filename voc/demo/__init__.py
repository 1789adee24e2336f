"""Synthetic 客户声音 stream for demos and benchmarks.

This is demo and benchmark data generated from the scenarios in the YAML files of this package. It
must never be used as the evaluation gold set: the texts are templated, so a model scored on them is
scored on these files. The voices carry only what a real export would carry; what the generator
knows about each voice (scenario, kind, style, …) comes separately as an `Answer`, for benchmarks and
tests only. See docs/demo_data.md for the scenario table, the channel funnel and the weekly spikes.

    topics.py     scenarios, consultations, praise, one-offs    scenarios.yaml consults.yaml praises.yaml oneoffs.yaml
    styles.py     how a voice is written                        styles.yaml slots.yaml
    people.py     personal data in the text                     people.yaml
    channels.py   channel shares, mixes, times, metadata         channels.yaml
    mix.py        spikes, repeats, duplicates, segments          mix.yaml
    generator.py  the week-by-week stream
    answers.py    the answer file;  writers.py  JSONL and CSV
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

from voc.demo.answers import Answer, answers_path, read_answers
from voc.demo.channels import CHANNEL_SHARES
from voc.demo.generator import Draft, stream
from voc.demo.mix import SPIKES, rows_per_week
from voc.demo.styles import STYLES, compose_text
from voc.demo.topics import (
    ALL_TOPICS,
    CONSULT,
    CONSULTS,
    KINDS,
    ONEOFF,
    ONEOFFS,
    PRAISE,
    PRAISES,
    RECURRING,
    SCENARIOS,
    Topic,
)
from voc.demo.writers import write_csv, write_jsonl, write_with_answers
from voc.models import LOCAL_TZ
from voc.periods import Period, parse_week, week_label

__all__ = [
    "ALL_TOPICS",
    "CHANNEL_SHARES",
    "CONSULT",
    "CONSULTS",
    "KINDS",
    "ONEOFF",
    "ONEOFFS",
    "PRAISE",
    "PRAISES",
    "RECURRING",
    "SCENARIOS",
    "SPIKES",
    "STYLES",
    "Answer",
    "Topic",
    "answers_path",
    "compose_text",
    "generate",
    "generate_with_answers",
    "last_complete_iso_week",
    "read_answers",
    "rows_per_week",
    "write_csv",
    "write_jsonl",
    "write_with_answers",
]


def generate(weeks: int = 8, per_week: int = 2000, seed: int = 7, end_week: str | None = None) -> Iterator[dict]:
    """Raw, unmasked ingestion rows: exactly `weeks * per_week` of them, week by week, in time order.

    Repeat contacts and exact duplicates are part of each week's `per_week` rows (see rows_per_week).
    `end_week` defaults to the last complete ISO week; pass it explicitly for reproducible output.
    The arguments are checked straight away; the rows are made as they are read.
    """
    return (draft.row for draft in _drafts(weeks, per_week, seed, end_week))


def generate_with_answers(
    weeks: int = 8, per_week: int = 2000, seed: int = 7, end_week: str | None = None
) -> Iterator[tuple[dict[str, Any], Answer]]:
    """The rows of `generate` with the same arguments, each paired with the generator's answers about it."""
    return ((draft.row, draft.answer()) for draft in _drafts(weeks, per_week, seed, end_week))


def last_complete_iso_week(today: date | None = None) -> str:
    """The last ISO week that ended before `today` (default: today in Asia/Shanghai)."""
    return week_label((today or datetime.now(LOCAL_TZ).date()) - timedelta(days=7))


def _drafts(weeks: int, per_week: int, seed: int, end_week: str | None) -> Iterator[Draft]:
    if weeks < 1:
        raise ValueError("weeks must be at least 1")
    if per_week < len(CHANNEL_SHARES):
        raise ValueError(f"per_week must be at least {len(CHANNEL_SHARES)} so that every channel appears each week")
    last_week: Period = parse_week(end_week or last_complete_iso_week())
    return stream(weeks, per_week, seed, last_week)
