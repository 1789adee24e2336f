"""Keyword search over voices: the query is cut into words (jieba), and every word must occur.

`信用卡投诉` is the words 信用卡 and 投诉, so it finds 「我要投诉，信用卡年费乱扣」 just as
`信用卡 投诉` does: the words may stand in any order and anywhere in the text. Each word is matched
as a case-insensitive substring, which is the same on SQLite and PostgreSQL and needs no index of
its own (the period and attribute filters narrow the rows first), and a word that jieba would cut
differently inside the voice (验证码 in 短信验证码) is still found.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

import jieba

jieba.setLogLevel(logging.WARNING)

MAX_TERMS = 12
# Words that carry no topic in a question about voices; dropped unless nothing else is left.
FILLER = frozenset({
    "的", "了", "吗", "呢", "啊", "吧", "呀", "嘛", "和", "与", "及", "或", "或者", "跟", "等", "在", "是",
    "我", "我要", "你", "你们", "我们", "他们", "这个", "那个", "一下", "请问", "怎么", "怎么办", "什么", "为什么",
    "问题", "情况", "相关", "有关", "关于", "方面",
})
_SEPARATORS = re.compile(r"[\W_]+")


@lru_cache(maxsize=4096)
def query_terms(query: str) -> tuple[str, ...]:
    """The words of a search query, in order, without separators, repeats and filler words."""
    words: list[str] = []
    for chunk in _SEPARATORS.split(query):
        words += [w.strip() for w in jieba.lcut(chunk) if w.strip()] if chunk else []
    unique = list(dict.fromkeys(words))
    content = [w for w in unique if w not in FILLER]
    return tuple((content or unique)[:MAX_TERMS])
