"""Text normalisation shared by the offline engine: Traditional → Simplified Chinese, full-width → half-width."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import zhconv


@lru_cache(maxsize=65536)
def simplified(text: str) -> str:
    """Voices arrive in Traditional Chinese too (Hong Kong, Taiwan, overseas customers); lexicons,
    keywords and the taxonomy are written in Simplified."""
    return zhconv.convert(unicodedata.normalize("NFKC", text), "zh-cn")
