"""Names for problems: keywords that most of a problem's voices say, and a label that reads like a title.

Keywords are jieba words and two-word collocations (验证码+收不到) of the cleaned texts, scored by how
many of the problem's voices contain them (coverage) and how few other problems do (distinctiveness).
A word in only one or two voices of a large problem is not its keyword, however rare it is elsewhere.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import Counter
from collections.abc import Sequence

import jieba

jieba.setLogLevel(logging.WARNING)

STOPWORDS = frozenset((
    "的", "了", "是", "我", "你", "他", "她", "们", "在", "有", "和", "就",
    "都", "也", "还", "又", "不", "没", "吧", "吗", "呢", "啊", "呀", "嗯",
    "哦", "那个", "这个", "就是", "就是说", "然后", "一个", "什么", "怎么",
    "为什么", "这样", "那样", "可以", "一下", "已经", "现在", "今天", "昨天",
    "一直", "还是", "但是", "所以", "因为", "如果", "自己", "你们", "我们", "他们",
    "这么", "那么", "这种", "客户", "来电", "反映", "表示", "要求", "银行",
    "某银行", "请问", "问题", "情况", "说", "要", "能", "会", "让", "给", "被",
    "把", "对", "从", "到", "跟", "去", "来", "上", "下", "里", "后", "前",
    "次", "个", "些", "点", "多", "少", "太", "很", "真", "好", "再", "才",
    "只", "等", "啥", "呗", "哈", "嘛", "啦", "喂", "您好", "你好",
    "谢谢", "麻烦", "处理", "办理", "客服", "工单", "转办", "任何", "才能", "一会儿", "一会",
    "有点", "怎么办", "怎么回事", "到底", "为啥", "之前", "之后", "以后", "时候", "这边", "那边",
    # who is speaking in a referral or a ticket, not what went wrong
    "消费者", "投诉人", "来电人", "当事人", "本人", "多次",
))
MIN_COVERAGE = 0.2  # a keyword is said by at least a fifth of the problem's voices
LABEL_COVERAGE = 0.3
TOP_N = 5


def tokens(text: str) -> list[str]:
    """Content words of a cleaned voice: jieba words without stop words and numbers."""
    return [w for w in jieba.lcut(text) if (len(w) >= 2 and w not in STOPWORDS and not w.isdigit()
            and not w.isascii()) or (w.isascii() and len(w) >= 3 and w.isalpha() and w.lower() not in {"the", "and"})]


def _terms(text: str) -> set[str]:
    """Words and adjacent-word collocations of one voice."""
    words = tokens(text)
    return {*words, *(a + b for a, b in itertools.pairwise(words) if len(a + b) <= 8)}


def keywords_by_cluster(texts_by_cluster: Sequence[Sequence[str]], top_n: int = TOP_N) -> list[list[str]]:
    """Per problem, its terms by coverage × distinctiveness; a word already inside a chosen
    collocation is not repeated."""
    coverage = [Counter(t for text in texts for t in _terms(text)) for texts in texts_by_cluster]
    problems_with = Counter(t for counts in coverage for t in counts)
    total = len(coverage)
    result = []
    for texts, counts in zip(texts_by_cluster, coverage, strict=True):
        size = max(len(texts), 1)
        floor = max(2, math.ceil(MIN_COVERAGE * size)) if size >= 5 else 1
        def score(term: str, counts: Counter[str] = counts, size: int = size) -> float:
            return (counts[term] / size) * math.log(1 + total / problems_with[term]) * _length_bonus(term)

        scored = sorted((t for t, n in counts.items() if n >= floor), key=lambda t: (-score(t), t))
        chosen: list[str] = []
        for term in scored:
            if not any(term in kept or kept in term for kept in chosen):
                chosen.append(term)
            if len(chosen) == top_n:
                break
        result.append(chosen)
    return result


def _length_bonus(term: str) -> float:
    """Prefer 验证码收不到 over 验证码 when both are said as often: the longer term names the problem."""
    return 1.0 + 0.15 * min(len(term) - 2, 4)


def problem_label(keywords: list[str], texts: Sequence[str], business: str | None, leaf: str) -> str:
    """A title: the business and the term most of the voices say (手机银行验证码收不到), else the tag's leaf."""
    size = max(len(texts), 1)
    said = [k for k in keywords if sum(k in t for t in texts) / size >= LABEL_COVERAGE and len(k) >= 3]
    phrase = said[0] if said else leaf
    prefix = business if business and business != "其他" and business not in phrase else ""
    return f"{prefix}{phrase}"
