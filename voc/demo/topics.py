"""What a voice is about: the recurring scenarios, consultations, praise and one-off complaints.

The topics are data: scenarios.yaml, consults.yaml, praises.yaml and oneoffs.yaml beside this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from pydantic import Field, model_validator

from voc.contracts import Dimension
from voc.demo.data import Frozen, load, load_each
from voc.models import Business, Channel, Segment

Kind = Literal["recurring", "consult", "praise", "oneoff"]
RECURRING: Final = "recurring"  # the scenarios: problems that come back every week
CONSULT: Final = "consult"
PRAISE: Final = "praise"
ONEOFF: Final = "oneoff"  # the long tail: complaints about a subject that turns up only a few times a week
KINDS: tuple[Kind, ...] = (RECURRING, CONSULT, PRAISE, ONEOFF)


class Topic(Frozen):
    """One topic and everything the generator writes about it."""

    key: str
    kind: Kind
    title: str = ""
    business: Business | None
    gist: str
    phrasings: tuple[str, ...] = Field(min_length=1)
    queries: tuple[str, ...] = ()
    # Tickets and staff reports always draw a demand and a suggestion, so neither may be empty.
    demands: tuple[str, ...] = Field(default=("尽快处理并给个答复",), min_length=1)
    suggestions: tuple[str, ...] = Field(default=("梳理相关流程并统一对客口径",), min_length=1)
    dimension: Dimension | None = None
    owner: str = ""
    weight: float = Field(default=1.0, gt=0)
    trend: float = 0.0
    affinity: Mapping[Channel, float] = Field(default_factory=dict)
    segments: Mapping[Segment, float] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _title_defaults_to_gist(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("title") and "gist" in data:
            return {**data, "title": data["gist"]}
        return data

    def weight_in_week(self, index: int) -> float:
        return self.weight * (1.0 + self.trend) ** index


class _OneOffs(Frozen):
    gist: str
    phrasings: tuple[str, ...] = Field(min_length=1)
    subjects: dict[str, Business] = Field(min_length=1)

    def topics(self) -> tuple[Topic, ...]:
        return tuple(self._topic(number, subject, business)
                     for number, (subject, business) in enumerate(self.subjects.items(), start=1))

    def _topic(self, number: int, subject: str, business: Business) -> Topic:
        return Topic(
            key=f"oneoff_{number:02d}",
            kind=ONEOFF,
            title=subject,
            business=business,
            gist=self.gist.replace("{subject}", subject),
            queries=(subject,),
            phrasings=tuple(p.replace("{subject}", subject) for p in self.phrasings),
        )


SCENARIOS: tuple[Topic, ...] = load_each("scenarios.yaml", Topic, kind=RECURRING)
CONSULTS: tuple[Topic, ...] = load_each("consults.yaml", Topic, kind=CONSULT)
PRAISES: tuple[Topic, ...] = load_each("praises.yaml", Topic, kind=PRAISE)
ONEOFFS: tuple[Topic, ...] = load("oneoffs.yaml", _OneOffs).topics()
ALL_TOPICS: dict[str, Topic] = {t.key: t for t in (*SCENARIOS, *CONSULTS, *PRAISES, *ONEOFFS)}

if len(ALL_TOPICS) != len(SCENARIOS) + len(CONSULTS) + len(PRAISES) + len(ONEOFFS):
    raise ValueError("voc/demo: a topic key is used twice across scenarios, consults, praises and oneoffs")
