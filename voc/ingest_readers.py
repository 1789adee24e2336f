"""Readers for a bank's exports: CSV/TSV, JSONL and XLSX, streamed row by row.

A reader yields `(row number, row)` where the row is a dict of header → cell, or a `RowError`
saying why that one row cannot be read. Only a file that cannot be read at all (missing, binary,
not a workbook) raises `IngestError`; one bad row never costs the rest of its file.
"""

from __future__ import annotations

import codecs
import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

CHUNK = 1 << 16
# A cell may legitimately be long (a transcript): the csv module's 128 KB default raised mid-file.
# Above this a cell is refused as a row error; the file goes on.
CSV_FIELD_LIMIT = 16 << 20
csv.field_size_limit(min(sys.maxsize, CSV_FIELD_LIMIT))
# Rows are streamed, so a file has no size limit; workbooks are read whole only below this size
# (merged cells are visible only then) and streamed above it.
XLSX_FULL_LOAD_BYTES = 20 << 20


class IngestError(Exception):
    """A whole file cannot be read (missing, unsupported type, undecodable)."""


class RowError(ValueError):
    """One row cannot become a voice; the message is the reject reason, raw what could be read."""

    def __init__(self, reason: str, raw: Any = None) -> None:
        super().__init__(reason)
        self.raw = raw


Row = tuple[int, dict[str, Any] | RowError]


@dataclass
class ReadNotes:
    """What a reader noticed about the file as a whole (shown with the file's counts)."""

    encoding: str = ""
    sheets: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- text decoding, streamed

def detect_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM) if the whole file decodes as UTF-8, else GB18030 (a superset
    of GBK and GB2312), else what charset-normaliser detects. Reads in chunks, never whole."""
    if _is_binary(path):
        raise IngestError(f"{path.name}：不是文本文件（含二进制内容），请导出为 CSV、JSONL 或 XLSX")
    for encoding in ("utf-8-sig", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
    from charset_normalizer import from_path

    best = from_path(path).best()
    if best is None:
        raise IngestError(f"{path.name}：无法识别文本编码，请另存为 UTF-8")
    return str(best.encoding)


def _is_binary(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(8192)
    # Control bytes fill binary files (and UTF-16 text); a few NULs in a CSV row are data, cleaned per row.
    controls = sum(1 for byte in head if byte < 9 or 13 < byte < 32 or byte == 127)
    return controls > max(8, len(head) // 20)


def decode_bytes(data: bytes) -> str:
    """Small files read whole (knowledge files): UTF-8 with or without BOM, else GB18030."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise IngestError("无法识别文本编码，请另存为 UTF-8")
    return str(best)


def _open_text(path: Path, notes: ReadNotes) -> IO[str]:
    notes.encoding = detect_encoding(path)
    return path.open(encoding=notes.encoding, newline="", errors="replace")


# ---------------------------------------------------------------- CSV

def read_csv(path: Path, notes: ReadNotes, delimiter: str = ",") -> Iterator[Row]:
    with _open_text(path, notes) as handle:
        lines = _Lines(handle)
        reader = csv.reader(lines, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return
        header = [h.replace("\x00", "").strip() for h in header]
        lines.take()
        number = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                number += 1
                yield number, RowError(f"CSV 格式错误：{exc}", raw="".join(lines.take())[:2000])
                continue
            for row in _split_broken_quote(cells, lines.take(), header, delimiter):
                number += 1
                yield number, row


class _Lines:
    """A line iterator that remembers the physical lines the csv reader consumed for one record."""

    def __init__(self, handle: IO[str]) -> None:
        self.handle = handle
        self.consumed: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self.handle)
        self.consumed.append(line)
        return line

    def take(self) -> list[str]:
        taken, self.consumed = self.consumed, []
        return taken


def _split_broken_quote(cells: list[str], physical: list[str], header: list[str], delimiter: str) -> list[
        dict[str, Any] | RowError]:
    """A record that spans lines is a multi-line cell, unless a quote was left open and swallowed
    the following rows: then the broken row is rejected and the rows it swallowed are read alone."""
    if len(physical) > 1 and _swallowed_rows(physical[1:], len(header), delimiter):
        rows: list[dict[str, Any] | RowError] = [
            RowError("引号未闭合：该行的引号吞并了后续行，已拆开单独读取后续行；请修正该行后重新导入",
                     raw=physical[0].rstrip("\r\n"))]
        for line in physical[1:]:
            parsed = next(csv.reader([line], delimiter=delimiter), [])
            rows.append(_as_row(parsed, header))
        return rows
    return [_as_row(cells, header)]


def _swallowed_rows(lines: list[str], columns: int, delimiter: str) -> bool:
    if columns < 2:
        return False
    full = [line for line in lines if len(next(csv.reader([line], delimiter=delimiter), [])) >= columns]
    return len(full) >= max(1, len(lines) // 2)


def _as_row(cells: list[str], header: list[str]) -> dict[str, Any] | RowError:
    if not any(c.strip() for c in cells):
        return RowError("空行", raw=cells)
    if len(cells) > len(header):
        return RowError(f"该行有 {len(cells)} 个单元格，但表头只有 {len(header)} 列", raw=cells)
    return dict(zip(header, cells, strict=False))


# ---------------------------------------------------------------- JSONL

def read_jsonl(path: Path, notes: ReadNotes) -> Iterator[Row]:
    with _open_text(path, notes) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, RowError(f"JSON 格式错误：{exc.msg}（第 {exc.colno} 列）", raw=line.rstrip("\r\n"))
                continue
            except RecursionError:
                yield number, RowError("JSON 嵌套过深", raw=line[:2000])
                continue
            yield number, value if isinstance(value, dict) else RowError("每行必须是一个 JSON 对象", raw=line.rstrip())


# ---------------------------------------------------------------- XLSX

def read_xlsx(path: Path, notes: ReadNotes) -> Iterator[Row]:
    """Every sheet is read (its first row is its header); merged cells take their anchor's value."""
    from openpyxl import load_workbook

    full = path.stat().st_size <= XLSX_FULL_LOAD_BYTES
    try:
        workbook = load_workbook(path, read_only=not full, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise IngestError(f"{path.name}：无法打开工作簿（{type(exc).__name__}），请确认是 XLSX 文件") from exc
    number = 0
    try:
        for sheet in workbook.worksheets:
            merged = _merged_values(sheet) if full else {}
            rows = sheet.iter_rows(values_only=False) if merged else sheet.iter_rows(values_only=True)
            header: list[str] | None = None
            for cells in rows:
                values = _cell_values(cells, merged)
                if header is None:
                    if all(v in (None, "") for v in values):
                        continue
                    header = [str(h).strip() if h is not None else "" for h in values]
                    notes.sheets.append(sheet.title)
                    continue
                if all(v in (None, "") for v in values):
                    continue  # a blank row in a workbook is formatting (openpyxl sees it only when streaming)
                number += 1
                row = {h: v for h, v in zip(header, values, strict=False) if h}
                if len(workbook.worksheets) > 1:
                    row["工作表"] = sheet.title
                yield number, row
    finally:
        workbook.close()
    if len(workbook.worksheets) > 1:
        notes.warnings.append(f"工作簿含 {len(workbook.worksheets)} 个工作表，已逐一读取："
                              + "、".join(notes.sheets))


def _merged_values(sheet: Any) -> dict[tuple[int, int], Any]:
    values: dict[tuple[int, int], Any] = {}
    ranges = sheet.merged_cells.ranges if hasattr(sheet, "merged_cells") else ()
    for merged in ranges:
        anchor = sheet.cell(merged.min_row, merged.min_col).value
        for row in range(merged.min_row, merged.max_row + 1):
            for col in range(merged.min_col, merged.max_col + 1):
                values[(row, col)] = anchor
    return values


def _cell_values(cells: tuple[Any, ...], merged: dict[tuple[int, int], Any]) -> list[Any]:
    if not merged:
        return list(cells)
    return [merged.get((c.row, c.column), c.value) if hasattr(c, "row") else c.value for c in cells]


# ---------------------------------------------------------------- dispatch

def read_rows(path: Path, notes: ReadNotes | None = None) -> Iterator[Row]:
    """Yield (row number, row or the reason it cannot be read). Row numbers are 1-based data rows."""
    notes = notes if notes is not None else ReadNotes()
    suffix = path.suffix.lower()
    if not path.is_file():
        raise IngestError(f"{path}：文件不存在")
    if path.stat().st_size == 0:
        notes.warnings.append("空文件（0 字节）")
        return
    if suffix in (".csv", ".tsv", ".txt"):
        yield from read_csv(path, notes, delimiter="\t" if suffix == ".tsv" else ",")
    elif suffix in (".jsonl", ".ndjson"):
        yield from read_jsonl(path, notes)
    elif suffix in (".xlsx", ".xlsm"):
        yield from read_xlsx(path, notes)
    else:
        raise IngestError(f"{path.name}：不支持的文件类型 {suffix or '（无扩展名）'}，请使用 CSV、JSONL 或 XLSX")
