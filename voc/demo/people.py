"""Made-up personal data in customers' words (people.yaml): mobiles, names, ID and card numbers, emails.

ID numbers carry a valid GB 11643 check character and card numbers pass Luhn, both computed by
voc.pii, the module that masks them, so masking is tested on numbers that look real.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from datetime import date, timedelta
from typing import Literal

from pydantic import Field

from voc.demo.data import Frozen, Texts, Weighted, load
from voc.demo.styles import FORMAL_STYLES
from voc.pii import id_check_char, luhn_valid

PiiKind = Literal["mobile", "name", "id_card", "bank_card", "email"]
TRAILING_PUNCTUATION = "。！？!?，, "
# Birth dates of ID numbers: 1945 to 2004.
FIRST_BIRTH_DATE, BIRTH_DATE_SPAN_DAYS = date(1945, 1, 1), 60 * 365


class _Writing(Frozen):
    """One kind of personal data: its share, and how customers (casual) and staff (formal) write it."""

    share: float = Field(gt=0)
    casual: Texts
    formal: Texts


class People(Frozen):
    """people.yaml."""

    surnames: str = Field(min_length=1)
    given_names: Texts
    mobile_prefixes: Texts
    id_regions: Texts
    card_bins: Texts
    email_users: Texts
    email_domains: Texts
    kinds: dict[PiiKind, _Writing]


PEOPLE = load("people.yaml", People)
PII_PICK = Weighted((kind, writing.share) for kind, writing in PEOPLE.kinds.items())


def mobile(rng: random.Random) -> str:
    return rng.choice(PEOPLE.mobile_prefixes) + f"{rng.randrange(10**9):09d}"


def id_number(rng: random.Random) -> str:
    birth = FIRST_BIRTH_DATE + timedelta(days=rng.randrange(BIRTH_DATE_SPAN_DAYS))
    first17 = f"{rng.choice(PEOPLE.id_regions)}{birth:%Y%m%d}{rng.randrange(1000):03d}"
    return first17 + id_check_char(first17)


def card_number(rng: random.Random) -> str:
    """16 or 19 digits from a bank's BIN, passing Luhn; sometimes written in groups of four."""
    length = rng.choice((16, 19))
    body = rng.choice(PEOPLE.card_bins) + "".join(rng.choice(string.digits) for _ in range(length - 7))
    number = next(body + digit for digit in string.digits if luhn_valid(body + digit))
    if rng.random() < 0.3:
        return " ".join(number[i : i + 4] for i in range(0, length, 4))
    return number


def person_name(rng: random.Random) -> str:
    return rng.choice(PEOPLE.surnames) + rng.choice(PEOPLE.given_names)


def email(rng: random.Random) -> str:
    return f"{rng.choice(PEOPLE.email_users)}{rng.randrange(100)}@{rng.choice(PEOPLE.email_domains)}"


MAKERS: dict[PiiKind, Callable[[random.Random], str]] = {
    "mobile": mobile,
    "name": person_name,
    "id_card": id_number,
    "bank_card": card_number,
    "email": email,
}


def with_pii(text: str, style: str, rng: random.Random) -> tuple[str, PiiKind]:
    """`text` with one piece of personal data added, as the writer of `style` would, and its kind."""
    kind = PII_PICK.pick(rng)
    formal = style in FORMAL_STYLES
    fragment = _fragment(kind, formal, rng)
    if formal:
        return f"{text.rstrip(TRAILING_PUNCTUATION)}。{fragment}。", kind
    if rng.random() < 0.3:
        return f"{fragment}，{text}", kind
    return f"{text.rstrip(TRAILING_PUNCTUATION)}，{fragment}", kind


def _fragment(kind: PiiKind, formal: bool, rng: random.Random) -> str:
    value = MAKERS[kind](rng)
    writing = PEOPLE.kinds[kind]
    return rng.choice(writing.formal if formal else writing.casual).format(v=value, s=value[0])
