"""Offline understanding of an analyst's question: which supported question type it is (intent) and
its slots (period, owner, business, segment, problem words).

Intent recognition is a nearest-exemplar classifier over character n-grams plus cue words; a
question that matches nothing well enough is answered honestly as unsupported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import TypeVar

import jieba
import numpy as np
from pydantic import BaseModel, Field
from sklearn.feature_extraction.text import TfidfVectorizer

from voc.models import Business, Segment
from voc.periods import Period, parse_week

INTENTS: dict[str, dict[str, list[str] | str]] = {
    "rising": {
        "name": "上升问题及原因",
        "title": "本周哪些问题在上升、为什么",
        "examples": ["本周哪些问题在上升？为什么？", "最近什么问题涨得最快", "这周有哪些突增的问题",
                     "哪些投诉在增加，原因是什么", "本周异动问题有哪些", "上升最明显的问题是什么",
                     "哪些问题显著上升了"],
        "cues": ["上升", "增加", "突增", "异动", "涨", "飙升", "变多"],
    },
    "owner_proposals": {
        "name": "部门待处理建议",
        "title": "某部门有哪些待处理的整改建议",
        "examples": ["信息科技部本周有哪些待处理建议？", "信用卡中心有什么整改建议", "零售银行部还有哪些建议没处理",
                     "哪些建议逾期了", "列出待认领的整改建议", "运营管理部的整改任务进展"],
        "cues": ["建议", "整改任务", "待处理", "待认领", "逾期", "整改中"],
    },
    "quotes": {
        "name": "客户原话",
        "title": "看某类问题的客户原话",
        "examples": ["给我看手机银行登录问题的客户原话", "客户是怎么说信用卡年费的", "找几条转账失败的原话",
                     "有没有客户抱怨排队的声音", "展示验证码收不到的客户反馈", "客户原声"],
        "cues": ["原话", "原声", "怎么说", "客户说", "声音", "反馈内容", "看看"],
    },
    "segment_change": {
        "name": "客群投诉变化",
        "title": "和上周相比，某客群的投诉有什么变化",
        "examples": ["和上周相比，老年客户投诉有什么变化？", "对公客户这周投诉多了吗", "私人银行客户的声音比上周怎样",
                     "老年人反映的问题有什么变化", "企业客户投诉环比"],
        "cues": ["相比", "变化", "环比", "比上周", "多了", "少了"],
    },
    "effect": {
        "name": "整改效果",
        "title": "某项整改有没有效果",
        "examples": ["上个月的积分规则整改有效果吗？", "验证码问题整改后有没有改善", "排队问题的整改见效了吗",
                     "年费整改效果怎么样", "整改之后投诉降了吗"],
        "cues": ["效果", "见效", "改善", "有用", "降了", "整改后"],
    },
}
MIN_WITH_CUE = 0.15  # a cue word of the intent and some likeness to its examples
MIN_WITHOUT_CUE = 0.6  # or close to one of its examples

Word = TypeVar("Word")
BUSINESS_WORDS: dict[str, Business] = {b.value: Business(b) for b in Business if b is not Business.OTHER} | {
    "APP": Business.MOBILE_BANKING, "app": Business.MOBILE_BANKING, "手机APP": Business.MOBILE_BANKING,
    "网银": Business.ONLINE_BANKING, "转账": Business.TRANSFER, "汇款": Business.TRANSFER,
    "储蓄卡": Business.DEBIT_CARD, "理财产品": Business.WEALTH, "基金": Business.WEALTH,
    "房贷": Business.LOAN, "网点": Business.BRANCH, "热线": Business.SERVICE, "客服": Business.SERVICE,
}
SEGMENT_WORDS: dict[str, Segment] = {
    "老年客户": Segment.ELDERLY, "老年人": Segment.ELDERLY, "老人": Segment.ELDERLY, "老年": Segment.ELDERLY,
    "对公": Segment.CORPORATE, "企业客户": Segment.CORPORATE, "公司客户": Segment.CORPORATE,
    "私人银行": Segment.PRIVATE_BANKING, "私行": Segment.PRIVATE_BANKING, "高净值": Segment.PRIVATE_BANKING,
}
FILLER = ("给我看", "给我", "看看", "帮我", "找几条", "找", "展示", "列出", "有没有", "有哪些", "哪些", "什么",
          "怎么样", "怎么说", "怎样", "为什么", "客户原话", "原话", "原声", "客户", "问题", "整改", "效果", "有效果",
          "见效", "建议", "待处理", "本周", "这周", "上周", "上个月", "本月", "最近", "的", "吗", "呢", "了", "是",
          "和", "相比", "变化",
          "投诉", "声音", "反馈", "抱怨", "之后", "后", "有", "没有", "改善", "还", "上升", "情况", "进展")
_WEEK = re.compile(r"(\d{4})\s*[-年]?\s*W?第?\s*(\d{1,2})\s*周|(\d{4}-W\d{1,2})", re.I)


class Slots(BaseModel, frozen=True):
    period: Period | None = None
    period_words: str = ""
    owner: str | None = None
    business: Business | None = None
    segment: Segment | None = None
    problem: list[str] = Field(default_factory=list)

    def merged_over(self, earlier: Slots) -> Slots:
        """A follow-up keeps what the earlier question said unless it says otherwise."""
        return Slots(period=self.period or earlier.period, period_words=self.period_words or earlier.period_words,
                     owner=self.owner or earlier.owner, business=self.business or earlier.business,
                     segment=self.segment or earlier.segment, problem=self.problem or earlier.problem)


@dataclass(frozen=True)
class Understanding:
    intent: str | None
    score: float
    slots: Slots


@cache
def _classifier() -> tuple[TfidfVectorizer, np.ndarray, list[str]]:
    texts, labels = [], []
    for name, spec in INTENTS.items():
        for example in spec["examples"]:
            texts.append(example)
            labels.append(name)
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
    return vectorizer, vectorizer.fit_transform(texts).toarray(), labels


def classify(message: str) -> tuple[str | None, float]:
    """The best accepted intent and its likeness (max cosine to its examples), or None."""
    vectorizer, matrix, labels = _classifier()
    similarity = matrix @ vectorizer.transform([message]).toarray()[0]
    best: dict[str, float] = {}
    for label, value in zip(labels, similarity, strict=True):
        best[label] = max(best.get(label, 0.0), float(value))
    cued = {name for name, spec in INTENTS.items() if any(cue in message for cue in spec["cues"])}
    accepted = {name: score for name, score in best.items()
                if score >= MIN_WITHOUT_CUE or (score >= MIN_WITH_CUE and name in cued)}
    if not accepted:
        return None, round(max(best.values()), 4)
    intent, score = max(accepted.items(), key=lambda kv: (kv[1], kv[0]))
    return intent, round(score, 4)


def resolve_period(message: str, latest_week: str | None) -> tuple[Period | None, str]:
    """本周 / 上周 / 上个月 / 最近N周 / 2026-W47 / 2026年第47周, relative to the latest week with voices."""
    explicit = _WEEK.search(message)
    if explicit:
        label = explicit.group(3) or f"{explicit.group(1)}-W{int(explicit.group(2)):02d}"
        try:
            return parse_week(label), label
        except ValueError:
            return None, ""
    if latest_week is None:
        return None, ""
    latest = parse_week(latest_week)
    if "上上周" in message:
        return latest.shifted(-2), "上上周"
    if "上周" in message and ("相比" not in message and "比上周" not in message):
        return latest.shifted(-1), "上周"
    recent = re.search(r"最近\s*(\d+)\s*周", message)
    if recent:
        weeks = max(1, min(int(recent.group(1)), 26))
        return Period(start=latest.shifted(1 - weeks).start, end=latest.end), f"最近{weeks}周"
    if "上个月" in message or "上月" in message:
        first = date(latest.end.year, latest.end.month, 1)
        end = first - timedelta(days=1)
        return Period(start=date(end.year, end.month, 1), end=end), "上个月"
    if "本月" in message or "这个月" in message:
        return Period(start=date(latest.end.year, latest.end.month, 1), end=latest.end), "本月"
    if "本周" in message or "这周" in message:
        return latest, "本周"
    return None, ""


def find_owner(message: str, departments: list[str]) -> str | None:
    for name in sorted(departments, key=len, reverse=True):
        core = name.removesuffix("部").removesuffix("中心")
        if name in message or (len(core) >= 2 and core in message):
            return name
    return None


def _first(message: str, words: Mapping[str, Word]) -> tuple[str, Word] | None:
    hits = [(message.find(w), -len(w), w) for w in words if w in message]
    if not hits:
        return None
    _, _, word = min(hits)
    return word, words[word]


def problem_words(message: str, remove: list[str]) -> list[str]:
    text = message
    for word in sorted([*remove, *FILLER], key=len, reverse=True):
        text = text.replace(word, " ")
    tokens = [t.strip() for t in jieba.lcut(re.sub(r"[，。？！?!,.、：:；;“”\"'（）()\s]+", " ", text))]
    return [t for t in tokens if len(t) >= 2 and not t.isdigit()][:3]


def understand(message: str, departments: list[str], latest_week: str | None,
               earlier: Understanding | None = None) -> Understanding:
    intent, score = classify(message)
    period, period_words = resolve_period(message, latest_week)
    owner = find_owner(message, departments)
    business = _first(message, BUSINESS_WORDS)
    segment = _first(message, SEGMENT_WORDS)
    remove = [w for w in (period_words, owner or "") if w] + [hit[0] for hit in (business, segment) if hit]
    if owner:
        remove.append(owner.removesuffix("部").removesuffix("中心"))
    slots = Slots(period=period, period_words=period_words, owner=owner,
                  business=business[1] if business else None,
                  segment=segment[1] if segment else None,
                  problem=problem_words(message, remove))
    if earlier is not None and earlier.intent is not None:
        slots = slots.merged_over(earlier.slots) if intent in (None, earlier.intent) else slots
        if intent is None and (period or owner or business or segment or slots.problem):
            return Understanding(earlier.intent, score, slots)  # a follow-up: "那上周呢？"
    return Understanding(intent, score, slots)


def intent_name(intent: str | None) -> str:
    """The question type in the analyst's words (上升问题及原因), never the code (rising)."""
    if intent is None:
        return "不在离线模式支持的问题类型内"
    return str(INTENTS[intent]["name"]) if intent in INTENTS else intent


def understood_label(understanding: Understanding) -> str:
    """理解问题：上升问题及原因（本周，信息科技部）: the question type and the slots it found."""
    slots = understanding.slots
    said = [slots.period_words or (slots.period.label if slots.period else ""), slots.owner or "",
            slots.business.value if slots.business else "", slots.segment.value if slots.segment else "",
            "、".join(slots.problem)]
    found = "，".join(w for w in said if w)
    return f"理解问题：{intent_name(understanding.intent)}" + (f"（{found}）" if found else "")


def supported_questions() -> list[str]:
    return [f"{spec['title']}（例：{spec['examples'][0]}）" for spec in INTENTS.values()]
