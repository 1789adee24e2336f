"""The CJK font of the report: Noto Sans CJK, shipped as a Python package so that charts, HTML and
PDF show Chinese on a machine without any CJK font (otherwise every character is a box)."""

from __future__ import annotations

import base64
import io
import os
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


# ---------------------------------------------------------------- the web page's font

WEB_FAMILY = "VocCJK"
WEB_SLICES = ("core", "common", "rare")
WEB_FONT_VERSION = 2  # bump when the slicing changes: cached files get new names


def _gb2312(first: int, last: int) -> set[int]:
    """The characters of GB 2312 rows `first`..`last` (0xA1–0xA9 symbols, 0xB0–0xD7 the 3,755 level-1
    hanzi, 0xD8–0xF7 the 3,008 level-2 hanzi)."""
    found = set()
    for row in range(first, last + 1):
        for cell in range(0xA1, 0xFF):
            try:
                found.add(ord(bytes((row, cell)).decode("gb2312")))
            except UnicodeDecodeError:
                continue
    return found


@cache
def web_font_slices() -> dict[str, tuple[int, ...]]:
    """The font cut for the web page by how often characters occur. With CSS `unicode-range` the
    browser downloads a slice only when the page shows one of its characters: `core` (Latin,
    punctuation, symbols, the 3,755 level-1 hanzi of GB 2312: everyday text, about 1.7 MB), `common`
    (the 3,008 level-2 hanzi), `rare` (every other character the font has)."""
    from fontTools.ttLib import TTFont

    cmap = {c for c in TTFont(str(cjk_font_path()), lazy=True).getBestCmap() if c >= 0x20}
    # Latin, punctuation, arrows, maths, ①, box drawing, shapes, symbols and dingbats (✓), CJK punctuation,
    # full-width forms: small blocks the page and everyday text use.
    blocks = [range(0x20, 0x7F), range(0xA0, 0x100), range(0x2000, 0x2070), range(0x2190, 0x2300),
              range(0x2460, 0x2500), range(0x2500, 0x2800), range(0x3000, 0x3040), range(0xFF00, 0xFFF0)]
    core = ({c for block in blocks for c in block} | _gb2312(0xA1, 0xA9) | _gb2312(0xB0, 0xD7)) & cmap
    common = (_gb2312(0xD8, 0xF7) & cmap) - core
    rare = cmap - core - common
    return {"core": tuple(sorted(core)), "common": tuple(sorted(common)), "rare": tuple(sorted(rare))}


def unicode_range(codepoints: tuple[int, ...]) -> str:
    """`U+4E00-4E01,U+4E03`: sorted code points as the CSS unicode-range descriptor."""
    spans: list[list[int]] = []
    for point in codepoints:
        if spans and point == spans[-1][1] + 1:
            spans[-1][1] = point
        else:
            spans.append([point, point])
    return ",".join(f"U+{a:X}" if a == b else f"U+{a:X}-{b:X}" for a, b in spans)


def web_font_name(slice_name: str) -> str:
    """The cached file's name: it changes with the font file and the slicing."""
    path = cjk_font_path()
    return f"voc-cjk-{slice_name}-{path.stat().st_size:x}-v{WEB_FONT_VERSION}.woff"


def write_web_font(slice_name: str, target: Path) -> Path:
    """Write one slice as WOFF (zlib: a third of WOFF2's time to build, 15% larger). A few seconds to a
    minute, once: callers cache the file. Written aside and renamed, so a reader never sees half a font."""
    from fontTools import subset

    options = subset.Options()
    options.flavor = "woff"
    options.layout_features = ["*"]  # locl too: the TC font draws simplified forms for lang="zh-CN"
    font = subset.load_font(str(cjk_font_path()), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=web_font_slices()[slice_name])
    subsetter.subset(font)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.part")
    subset.save_font(font, str(partial), options)
    os.replace(partial, target)
    return target
