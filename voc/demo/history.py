"""The demo bank's labelled history (`voc demo-data --history PATH`): demo voices of the weeks before
the demo stream, filed as that bank's agents filed them — its own categories (工单分类 such as
手机银行-登录-验证码), departments (责任部门 such as 科技部) and ratings (满意度) — with the mapping
that turns them back into taxonomy tags and service-matrix departments
(knowledge/history_mapping.example.yaml). The labels come from the generator's answers: the topic
each voice was written from. Demo data only, never evaluation gold.
"""

from __future__ import annotations

import csv
import random
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

from pydantic import Field, model_validator

from voc.demo.data import Frozen, Weighted, load, require_keys
from voc.demo.generator import stream
from voc.demo.topics import CONSULT, ONEOFF, PRAISE, RECURRING, SCENARIOS, Kind, Topic
from voc.learning.history_mapping import EXAMPLE_MAPPING
from voc.models import Business
from voc.periods import parse_week

HISTORY_HEADERS = ("工单编号", "受理时间", "受理渠道", "业务类型", "客户诉求", "工单分类", "责任部门", "满意度")
MAPPING_SUFFIX = "_mapping.yaml"


class _Filing(Frozen):
    """voc/demo/history.yaml: how the demo bank files a voice."""

    categories: dict[str, str]
    consult: str
    praise: str
    oneoff: str
    unfiled: str
    unfiled_share: float = Field(ge=0, lt=1)
    blank_text_share: float = Field(ge=0, lt=1)
    departments: dict[str, str]
    business_owner: dict[Business, str]
    satisfaction: dict[Kind, dict[str, float]]

    @model_validator(mode="after")
    def _complete(self) -> _Filing:
        require_keys(self.categories, [s.key for s in SCENARIOS], "history.yaml categories")
        owners = {s.owner for s in SCENARIOS} | set(self.business_owner.values())
        missing = owners - set(self.departments)
        if missing:
            raise ValueError(f"history.yaml departments must name {sorted(missing)}")
        return self


FILING = load("history.yaml", _Filing)


def history_rows(weeks: int, per_week: int, seed: int, end_week: str) -> Iterator[dict[str, str]]:
    """The history's rows (headers HISTORY_HEADERS), week by week up to `end_week`, unmasked like a
    real export. Its own random stream: the same arguments give the same rows."""
    rng = random.Random(seed)
    ratings: Mapping[str, Weighted[str]] = {kind: Weighted([*shares.items(), ("", 1 - sum(shares.values()))])
                                            for kind, shares in FILING.satisfaction.items()}
    for draft in stream(weeks, per_week, seed, parse_week(end_week)):
        row, topic = draft.row, draft.topic
        text = "" if rng.random() < FILING.blank_text_share else row["text"]
        category = FILING.unfiled if rng.random() < FILING.unfiled_share else _category(topic)
        owner = topic.owner or (FILING.business_owner.get(topic.business) if topic.business else None)
        yield dict(zip(HISTORY_HEADERS, (
            row["id"].replace("DEMO", "HIST"), row["created_at"].replace("T", " "), row["channel"],
            row["business"] or "", text, category, FILING.departments[owner] if owner else "",
            ratings[topic.kind].pick(rng) if topic.kind in ratings else ""), strict=True))


def _category(topic: Topic) -> str:
    if topic.kind == RECURRING:
        return FILING.categories[topic.key]
    return {CONSULT: FILING.consult, PRAISE: FILING.praise, ONEOFF: FILING.oneoff}[topic.kind]


def mapping_path(history: Path) -> Path:
    """Where the history's mapping goes: history.csv → history_mapping.yaml."""
    return history.with_name(history.stem + MAPPING_SUFFIX)


def write_history(path: Path, weeks: int, per_week: int, seed: int, end_week: str) -> tuple[int, Path]:
    """The history as a CSV export (UTF-8 with BOM, as Excel writes it) and its mapping beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=HISTORY_HEADERS)
        writer.writeheader()
        for row in history_rows(weeks, per_week, seed, end_week):
            writer.writerow(row)
            count += 1
    mapping = mapping_path(path)
    shutil.copyfile(EXAMPLE_MAPPING, mapping)
    return count, mapping
