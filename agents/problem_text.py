"""What of a voice is the customer's problem: the text the analysis agent embeds, clusters and names.

Channel preambles (a 12378 referral header, a ticket template), call-centre openers, ASR fillers and
mask tokens say nothing about the problem, yet two voices that share one look alike to an embedding
and to a keyword count: five unrelated referrals become one "problem". They are stripped first. The
floor is the maintained list in knowledge/boilerplate.yaml (served by the knowledge MCP server); on
top of it, phrases that recur across many unrelated tags in the week are learned and stripped too.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import jieba

from voc.text import simplified

MASK_RE = re.compile(r"\[(手机号|身份证号|证件号|银行卡号|邮箱|姓名)\]")
# Clause breaks: what is left between removed phrases is joined by one comma.
BREAKS_RE = re.compile(r"[\s，。！？、；：,.!?;:（）()“”\"'【】\[\]《》\-—…~]+")
# A learned phrase: at least three words and five characters (shorter runs are vocabulary, such as 手机银行),
# in enough voices, spread over enough different tags, none of which holds much of it.
MIN_WORDS, MIN_CHARS, MAX_WORDS = 3, 5, 8
MIN_VOICES, MIN_TAGS, MAX_TAG_SHARE = 4, 5, 0.35
LEARN_SAMPLE = 5000  # voices read to learn phrases: enough for a week's templates, bounded time


@dataclass(frozen=True)
class Boilerplate:
    phrases: tuple[str, ...] = ()
    fillers: tuple[str, ...] = ()
    learned: tuple[str, ...] = field(default=())

    def clean(self, text: str) -> str:
        """The voice without boilerplate, fillers and mask tokens; the original when nothing is left.
        The learned phrases were learned on floor-cleaned text, so they are stripped from it too."""
        cleaned = _strip(MASK_RE.sub(" ", simplified(text)), self.phrases, self.fillers)
        if self.learned:
            cleaned = _strip(cleaned, self.learned, ())
        return cleaned if len(cleaned) >= 2 else simplified(text).strip()

    def with_learned(self, texts: Sequence[str], tags: Sequence[str]) -> Boilerplate:
        return Boilerplate(self.phrases, self.fillers, tuple(learn_phrases(texts, tags, self)))


def _strip(text: str, phrases: Sequence[str], fillers: Sequence[str]) -> str:
    """Every occurrence of every phrase is marked first and the marks removed together, so phrases
    that overlap (windows of one long preamble) take the whole preamble; what is left between them
    is joined by one comma."""
    covered = bytearray(len(text))
    for phrase in phrases:
        start = text.find(phrase)
        while start >= 0:
            covered[start:start + len(phrase)] = b"\x01" * len(phrase)
            start = text.find(phrase, start + 1)
    kept = "".join(" " if covered[i] else char for i, char in enumerate(text))
    for filler in fillers:
        kept = kept.replace(filler, "")
    return "，".join(part for part in BREAKS_RE.split(kept) if part)


def learn_phrases(texts: Sequence[str], tags: Sequence[str], floor: Boilerplate) -> list[str]:
    """Word runs found in at least MIN_VOICES voices of at least MIN_TAGS different tags, no tag
    holding more than MAX_TAG_SHARE of them: a template or a stock phrase, not a problem."""
    step = max(1, len(texts) // LEARN_SAMPLE)  # an even sample keeps every week's templates in view
    tags_of: dict[str, Counter[str]] = defaultdict(Counter)
    for text, tag in zip(texts[::step], tags[::step], strict=True):
        for phrase in set(_word_runs(floor.clean(text))):
            tags_of[phrase][tag] += 1
    chosen = [phrase for phrase, by_tag in tags_of.items()
              if sum(by_tag.values()) >= MIN_VOICES and len(by_tag) >= MIN_TAGS
              and max(by_tag.values()) / sum(by_tag.values()) <= MAX_TAG_SHARE]
    return _maximal(chosen)


def _word_runs(text: str) -> Iterable[str]:
    words = [w for w in jieba.lcut(text) if w.strip()]
    for start in range(len(words)):
        for end in range(start + MIN_WORDS, min(len(words), start + MAX_WORDS) + 1):
            phrase = "".join(words[start:end])
            if len(phrase) >= MIN_CHARS and not phrase.isdigit():
                yield phrase


def _maximal(phrases: list[str]) -> list[str]:
    """Drop a phrase contained in a longer chosen one: the longer is stripped first anyway."""
    ordered = sorted(set(phrases), key=len, reverse=True)
    kept: list[str] = []
    for phrase in ordered:
        if not any(phrase in longer for longer in kept):
            kept.append(phrase)
    return sorted(kept)
