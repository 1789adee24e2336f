"""Demo voices to files: JSONL (with the answer file beside it) and CSV, plain or as a bank export."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import IO, Any

from voc.demo.answers import Answer, answers_path
from voc.ingest_rows import VOICE_FIELDS, ColumnMap

# The headers of the made-up bank export, in its column order. What each one means comes from the
# built-in column map, so the export always ingests without a --column-map of its own.
BANK_HEADERS = ("工单编号", "受理时间", "受理渠道", "来源类型", "客户号", "客群", "业务类型", "客户诉求")


@cache
def bank_fields() -> tuple[str, ...]:
    """The voice field behind each of BANK_HEADERS, read from the built-in column map."""
    columns = ColumnMap.load().columns  # keyed by normalised header; these Chinese headers are already normal
    unknown = [header for header in BANK_HEADERS if header not in columns]
    if unknown:
        raise ValueError(f"the built-in column map does not know the demo export's headers {unknown}")
    return tuple(columns[header] for header in BANK_HEADERS)


def write_jsonl(rows: Iterable[dict[str, Any]], path: str | Path) -> int:
    count = 0
    with _open_for_writing(path, "utf-8") as out:
        for row in rows:
            out.write(_json_line(row))
            count += 1
    return count


def write_with_answers(voices: Iterable[tuple[dict[str, Any], Answer]], path: str | Path) -> int:
    """The voices to `path` (JSONL) and the generator's answers to answers_path(path), in one pass."""
    count = 0
    with _open_for_writing(path, "utf-8") as rows_out, _open_for_writing(answers_path(path), "utf-8") as answers_out:
        for row, answer in voices:
            rows_out.write(_json_line(row))
            answers_out.write(answer.model_dump_json() + "\n")
            count += 1
    return count


def write_csv(
    rows: Iterable[dict[str, Any]], path: str | Path, encoding: str = "utf-8-sig", bank_headers: bool = False
) -> int:
    """Write rows as CSV; with bank_headers, as a bank export (中文表头, no metadata column)."""
    header = list(BANK_HEADERS) if bank_headers else list(VOICE_FIELDS)
    record = _bank_record if bank_headers else _csv_record
    count = 0
    with _open_for_writing(path, encoding) as out:
        writer = csv.writer(out)
        writer.writerow(header)
        for row in rows:
            writer.writerow(record(row))
            count += 1
    return count


def _open_for_writing(path: str | Path, encoding: str) -> IO[str]:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.open("w", encoding=encoding, newline="")


def _json_line(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False) + "\n"


def _csv_record(row: dict[str, Any]) -> list[str]:
    return [_csv_cell(name, row.get(name)) for name in VOICE_FIELDS]


def _csv_cell(name: str, value: Any) -> str:
    if name == "metadata":
        return json.dumps(value or {}, ensure_ascii=False)
    return "" if value is None else str(value)


def _bank_record(row: dict[str, Any]) -> list[str]:
    return [_bank_cell(name, row.get(name)) for name in bank_fields()]


def _bank_cell(name: str, value: Any) -> str:
    # Bank exports write times with a space and leave empty cells empty.
    if value is None:
        return ""
    return str(value).replace("T", " ") if name == "created_at" else str(value)
