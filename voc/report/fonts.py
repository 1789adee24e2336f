"""The CJK font of the report: Noto Sans CJK, shipped as a Python package so that charts, HTML and
PDF show Chinese on a machine without any CJK font (otherwise every character is a box)."""

from __future__ import annotations

import base64
import io
from functools import cache
from pathlib import Path

FAMILY = "VOC Noto Sans CJK"


@cache
def cjk_font_path() -> Path:
    try:
        import cvttf_NotoSansCJK_Regular as package
    except ImportError as exc:  # pragma: no cover - a broken install
        raise RuntimeError("the CJK font package is missing: pip install cvttf-NotoSansCJK-Regular") from exc
    path = Path(package.__file__).parent / "NotoSansCJKtc-Regular.otf"
    if not path.is_file():  # pragma: no cover
        raise RuntimeError(f"CJK font file not found at {path}")
    return path


@cache
def matplotlib_family() -> str:
    """Register the font with matplotlib once; returns the family name to use."""
    from matplotlib import font_manager

    path = cjk_font_path()
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path)).get_name()


def subset_font_data_uri(text: str) -> str:
    """A WOFF subset holding exactly the characters of `text`, as a data: URI for @font-face. The
    full font is 16 MB; a week's report needs a few hundred kilobytes of it."""
    from fontTools import subset

    font = subset.load_font(str(cjk_font_path()), subset.Options())
    options = subset.Options()
    options.flavor = "woff"
    options.layout_features = ["*"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="".join(sorted(set(text))) + " ")
    subsetter.subset(font)
    buffer = io.BytesIO()
    subset.save_font(font, buffer, options)
    return "data:font/woff;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
