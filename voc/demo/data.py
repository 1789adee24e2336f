"""The YAML files beside this module, read once at import and validated, and weighted choices."""

from __future__ import annotations

import math
import random
from bisect import bisect
from collections.abc import Collection, Iterable, Mapping
from itertools import accumulate
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

# The YAML files are package data: they sit beside the modules, so an installed wheel has them too.
HERE = Path(__file__).parent

T = TypeVar("T")
# Words to pick from: never empty, since picking from nothing fails half-way through a stream.
Texts = Annotated[tuple[str, ...], Field(min_length=1)]


class Frozen(BaseModel):
    """A validated piece of a YAML file: unknown keys are typos, not extensions."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def read(name: str) -> Any:
    with (HERE / name).open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def load(name: str, shape: type[T]) -> T:
    """The whole file as `shape`; a mistake fails at import, naming the file and the field."""
    return _validated(name, shape, read(name))


def load_each(name: str, shape: type[T], **common: Any) -> tuple[T, ...]:
    """A file mapping keys to entries: one `shape` per entry, in file order, its key as `key`."""
    return tuple(_validated(f"{name}: {key}", shape, {"key": key, **common, **entry})
                 for key, entry in read(name).items())


def _validated(where: str, shape: type[T], value: Any) -> T:
    try:
        return TypeAdapter(shape).validate_python(value)
    except ValidationError as exc:
        raise ValueError(f"voc/demo/{where} is not valid demo data:\n{exc}") from exc


def require_keys(mapping: Mapping[Any, Any], keys: Collection[Any], what: str) -> None:
    """For validators: a table that must name every one of `keys` and nothing else."""
    if set(mapping) != set(keys):
        raise ValueError(f"{what} must name exactly {sorted(map(str, keys))}, not {sorted(map(str, mapping))}")


class Weighted(Generic[T]):
    """A weighted choice with precomputed cumulative weights; items of weight 0 are never picked."""

    def __init__(self, weights: Iterable[tuple[T, float]]):
        pairs = [(item, w) for item, w in weights if w > 0]
        self.items = [item for item, _ in pairs]
        self.cum = list(accumulate(w for _, w in pairs))
        self.total = self.cum[-1]
        # An infinite last bound keeps float rounding from ever picking past the last item.
        self.cum[-1] = math.inf

    def pick(self, rng: random.Random) -> T:
        return self.items[bisect(self.cum, rng.random() * self.total)]
