"""How a voice is written: one topic's phrasing rendered in one of ten styles (styles.yaml, slots.yaml)."""

from __future__ import annotations

import random
import re
import string
from functools import cache
from typing import Annotated

from pydantic import AfterValidator, field_validator

from voc.demo.data import Frozen, Texts, load, require_keys
from voc.demo.topics import CONSULT, KINDS, PRAISE, Kind, Topic
from voc.models import SourceType

COLLOQUIAL, SHORT, ASR, SOCIAL, TICKET, REGULATOR = "口语", "短句", "ASR转写", "社交媒体", "工单", "监管转送"
STAFF, ELDERLY, TRADITIONAL, MIXED_EN = "员工反馈", "老年", "繁体", "中英混合"
STYLES = (COLLOQUIAL, SHORT, ASR, SOCIAL, TICKET, REGULATOR, STAFF, ELDERLY, TRADITIONAL, MIXED_EN)
# Staff write personal data formally (联系电话：…) in these styles.
FORMAL_STYLES = frozenset({TICKET, REGULATOR})


def _every_kind(table: dict[Kind, Texts]) -> dict[Kind, Texts]:
    require_keys(table, KINDS, "a table by kind")
    return table


ByKind = Annotated[dict[Kind, Texts], AfterValidator(_every_kind)]


class _Short(Frozen):
    suffixes: Texts
    question_words: Texts


class _Elderly(Frozen):
    openers: Texts
    closers: ByKind


class _Asr(Frozen):
    fillers: Texts
    homophones: dict[str, str]


class _Social(Frozen):
    rants: Texts
    templates: Texts
    praise_templates: Texts


class _Ticket(Frozen):
    negative: Texts
    consult: Texts
    praise: Texts


class _Staff(Frozen):
    front: Texts
    back: Texts
    consult: Texts
    consult_suggestions: Texts
    roles: dict[SourceType, Texts]


class _Mixed(Frozen):
    replacements: dict[str, str]
    suffixes: Texts


class _Repeat(Frozen):
    prefixes: Texts
    suffixes: Texts


class Words(Frozen):
    """styles.yaml: the words around a phrasing in every style."""

    bank: str
    openers: ByKind
    closers: ByKind
    short: _Short
    elderly: _Elderly
    asr: _Asr
    social: _Social
    ticket: _Ticket
    regulator: Texts
    staff: _Staff
    third_person: dict[str, str]
    mixed_english: _Mixed
    traditional: Texts  # lines of simplified-traditional character pairs
    repeat: _Repeat

    @field_validator("traditional")
    @classmethod
    def _pairs(cls, lines: Texts) -> Texts:
        if any(len(line) % 2 for line in lines):
            raise ValueError("every line of traditional must be whole simplified-traditional pairs")
        return lines


WORDS = load("styles.yaml", Words)
# Slot values are strings: a number in slots.yaml must be quoted ("0896", not 0896).
SLOTS = load("slots.yaml", dict[str, Texts])

_PAIRS = "".join(WORDS.traditional)
TO_TRADITIONAL = str.maketrans({_PAIRS[i]: _PAIRS[i + 1] for i in range(0, len(_PAIRS), 2)})
CLAUSE_BREAK = re.compile(r"[，。？！、；,?!]+")


@cache
def _fields(template: str) -> tuple[str, ...]:
    return tuple(name for _, name, _, _ in string.Formatter().parse(template) if name)


def fill(template: str, rng: random.Random, **given: str) -> str:
    """The template with its {slots} filled: `given` values first, the others drawn from slots.yaml."""
    values = {name: given[name] if name in given else rng.choice(SLOTS[name]) for name in _fields(template)}
    return template.format_map(values) if values else template


def compose_text(topic: Topic, style: str, rng: random.Random, source: SourceType = SourceType.CUSTOMER) -> str:
    """One voice about `topic` written in `style` (without personal data or channel wrappers)."""
    phrasing = fill(rng.choice(topic.phrasings), rng)
    if style == SHORT:
        return _short(topic, phrasing, rng)
    if style == ASR:
        return asr(_colloquial(topic, phrasing, rng), rng)
    if style == ELDERLY:
        return _elderly(topic, phrasing, rng)
    if style == SOCIAL:
        return _social(topic, phrasing, rng)
    if style == TICKET:
        return _ticket(topic, phrasing, rng)
    if style == REGULATOR:
        return _regulator(topic, phrasing, rng)
    if style == STAFF:
        return _staff(topic, phrasing, rng, source)
    if style == TRADITIONAL:
        return _colloquial(topic, phrasing, rng).translate(TO_TRADITIONAL)
    if style == MIXED_EN:
        return _mixed_english(_colloquial(topic, phrasing, rng), rng)
    return _colloquial(topic, phrasing, rng)


def asr(text: str, rng: random.Random) -> str:
    """A speech transcript of `text`: misheard words, fillers, lost punctuation, stutters."""
    for right, heard in WORDS.asr.homophones.items():
        if right in text and rng.random() < 0.3:
            text = text.replace(right, heard)
    spoken = []
    for clause in (c for c in CLAUSE_BREAK.split(text) if c):
        if rng.random() < 0.35:
            clause = rng.choice(WORDS.asr.fillers) + " " + clause
        if rng.random() < 0.15 and len(clause) > 4:
            clause = clause[:2] + clause[:2] + clause[2:]
        spoken.append(clause)
    joined = rng.choice((" ", "", " ")).join(spoken)
    return ("客户：" if rng.random() < 0.4 else "") + joined


def reworded(text: str, rng: random.Random) -> str:
    """A repeat contact's text: the same words, or with 我昨天已经反映过了… before or after them."""
    roll = rng.random()
    if roll < 0.4:
        return text
    if roll < 0.75:
        return rng.choice(WORDS.repeat.prefixes) + text
    return text.rstrip("。！？") + rng.choice(WORDS.repeat.suffixes)


def _third_person(text: str) -> str:
    for first, third in WORDS.third_person.items():
        text = text.replace(first, third)
    return text.rstrip("？?。！!")


def _colloquial(topic: Topic, phrasing: str, rng: random.Random) -> str:
    return rng.choice(WORDS.openers[topic.kind]) + phrasing + rng.choice(WORDS.closers[topic.kind])


def _short(topic: Topic, phrasing: str, rng: random.Random) -> str:
    if not topic.queries or rng.random() < 0.15:
        return phrasing
    query = rng.choice(topic.queries)
    if rng.random() < 0.2 and not any(word in query for word in WORDS.short.question_words):
        return query + "怎么办"
    return query + rng.choice(WORDS.short.suffixes)


def _elderly(topic: Topic, phrasing: str, rng: random.Random) -> str:
    return rng.choice(WORDS.elderly.openers) + phrasing + rng.choice(WORDS.elderly.closers[topic.kind])


def _social(topic: Topic, phrasing: str, rng: random.Random) -> str:
    bank, business = WORDS.bank, topic.business.value if topic.business else ""
    praise = topic.kind == PRAISE
    templates = WORDS.social.praise_templates if praise else WORDS.social.templates
    tag = rng.choice((bank + business, bank, bank + "APP" if praise else "银行套路"))
    return rng.choice(templates).format(tag=tag, text=phrasing, rant=rng.choice(WORDS.social.rants), bank=bank)


def _ticket(topic: Topic, phrasing: str, rng: random.Random) -> str:
    templates = {CONSULT: WORDS.ticket.consult, PRAISE: WORDS.ticket.praise}.get(topic.kind, WORDS.ticket.negative)
    # A demand is drawn for every template, used or not, so that each style draws the same way.
    return rng.choice(templates).format(
        third=_third_person(phrasing), gist=topic.gist, demand=rng.choice(topic.demands)
    )


def _regulator(topic: Topic, phrasing: str, rng: random.Random) -> str:
    return rng.choice(WORDS.regulator).format(
        third=_third_person(phrasing),
        gist=topic.gist,
        demand=rng.choice(topic.demands),
        ref=f"12378-{rng.randrange(10**7):07d}",
    )


def _staff(topic: Topic, phrasing: str, rng: random.Random, source: SourceType) -> str:
    staff = WORDS.staff
    if topic.kind == CONSULT:
        return fill(rng.choice(staff.consult), rng, gist=topic.gist, suggestion=rng.choice(staff.consult_suggestions))
    templates = staff.front if source is SourceType.FRONT_STAFF else staff.back
    role = rng.choice(staff.roles[source])
    return fill(
        rng.choice(templates),
        rng,
        gist=topic.gist,
        third=_third_person(phrasing),
        phrasing=phrasing,
        suggestion=rng.choice(topic.suggestions),
        role=role,
    )


def _mixed_english(text: str, rng: random.Random) -> str:
    mixed = text
    for chinese, english in WORDS.mixed_english.replacements.items():
        if chinese in mixed and rng.random() < 0.6:
            mixed = mixed.replace(chinese, english, 1)
    if mixed == text or rng.random() < 0.3:
        mixed += rng.choice(WORDS.mixed_english.suffixes)
    return mixed
