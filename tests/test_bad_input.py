"""Hostile and broken exports: every row in is stored, duplicate or rejected with its reason, per
file, on SQLite and PostgreSQL; a bad row never costs its file and a bad file never the next one."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.conftest import write_jsonl
from voc.config import Settings, get_settings
from voc.ingest import FileReport, IngestError, Ingestor
from voc.models import LOCAL_TZ
from voc.storage import Store, VoiceRow

HEADERS = ["工单编号", "受理时间", "受理渠道", "客户号", "客群", "业务类型", "客户诉求", "联系电话"]
GOOD = ["G1", "2026-11-17 09:30", "热线", "C1", "老年", "借记卡", "社保卡激活要跑三趟", "13912345678"]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return Settings(data_dir=tmp_path / "data")
    return request.getfixturevalue("pg_settings")  # type: ignore[no-any-return]


def _ingest(settings: Settings, path: Path) -> FileReport:
    store = Store(settings.resolved_database_url)
    before = _count(store)
    report = Ingestor(store, settings).ingest_file(path)
    assert report.balanced, report
    assert _count(store) - before == report.stored + report.linked
    if report.rejected:
        assert report.rejects_path is not None
        rejects = [json.loads(line) for line in Path(report.rejects_path).read_text(encoding="utf-8").splitlines()]
        assert len(rejects) == report.rejected
        assert all(r["reason"] and r["raw"] is not None for r in rejects)
    return report


def _count(store: Store) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(VoiceRow)) or 0)


def _csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle).writerows([HEADERS, *rows])
    return path


def _row(voice_id: str, text: str, **changes: str) -> list[str]:
    row = dict(zip(HEADERS, GOOD, strict=True)) | {"工单编号": voice_id, "客户诉求": text, "客户号": f"C-{voice_id}"}
    return list((row | changes).values())


# ---------------------------------------------------------------- files that must be read whole

@pytest.mark.parametrize(("encoding", "text"), [("gbk", "柜台排队两小时"), ("gb18030", "𠮷字写不进系统，开户失败"),
                                                ("utf-8-sig", "带 BOM 的导出")])
def test_encodings(backend: Settings, tmp_path: Path, encoding: str, text: str) -> None:
    report = _ingest(backend, _csv(tmp_path / "e.csv", [_row("E1", text), _row("E2", "第二行")], encoding))
    assert (report.rows, report.stored) == (2, 2)
    assert Store(backend.resolved_database_url).get_voice("E1").text == text


def test_broken_quote_rejects_its_row_and_keeps_the_rows_it_swallowed(backend: Settings, tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    _csv(path, [_row("Q1", "正常")])
    with path.open("a", encoding="utf-8", newline="") as handle:
        handle.write('Q2,2026-11-17 10:00,热线,C2,零售,信用卡,"客户说转账失败,13900001111\r\n')
        handle.write("Q3,2026-11-17 11:00,热线,C3,零售,信用卡,被吞掉的第一行,13900001112\r\n")
        handle.write("Q4,2026-11-17 12:00,热线,C4,零售,信用卡,被吞掉的第二行,13900001113\r\n")
    report = _ingest(backend, path)
    assert (report.rows, report.stored, report.rejected) == (4, 3, 1)
    store = Store(backend.resolved_database_url)
    assert store.get_voice("Q3").text == "被吞掉的第一行" and store.get_voice("Q4").text == "被吞掉的第二行"
    reject = json.loads(Path(report.rejects_path or "").read_text(encoding="utf-8"))
    assert "引号未闭合" in reject["reason"] and "13900001111" not in json.dumps(reject, ensure_ascii=False)


def test_a_multiline_cell_is_not_a_broken_quote(backend: Settings, tmp_path: Path) -> None:
    report = _ingest(backend, _csv(tmp_path / "ml.csv", [_row("M1", "第一段\n第二段\n第三段"), _row("M2", "x")]))
    assert (report.rows, report.stored) == (2, 2)


def test_huge_cells_nul_bytes_emoji_and_blanks(backend: Settings, tmp_path: Path) -> None:
    rows = [_row("H1", "长" * 200_000), _row("H2", "超过 128 KB 的单元格之后的行"),
            _row("H3", "含\x00空字符\x00的文本"), _row("H4", "😡😡😡"), _row("H5", "   "), _row("H6", ""),
            [""] * len(HEADERS)]
    report = _ingest(backend, _csv(tmp_path / "big.csv", rows))
    assert (report.rows, report.stored, report.rejected) == (7, 3, 4)
    store = Store(backend.resolved_database_url)
    assert store.get_voice("H3").text == "含空字符的文本" and store.get_voice("H4").text == "😡😡😡"
    assert any("文本过长" in reason for reason in report.reasons)


def test_one_megabyte_jsonl_text_and_nul_in_metadata(backend: Settings, tmp_path: Path) -> None:
    rows: list[dict[str, object]] = [
        {"id": "J1", "created_at": "2026-11-17T09:00:00", "channel": "电话客服", "text": "x" * 1_048_576},
        {"id": "J2", "created_at": "2026-11-17T09:00:00", "channel": "电话客服", "text": "元数据里有空字符",
         "metadata": {"备注\x00": "a\x00b", "嵌套": {"列表": ["\x00"]}}},
    ]
    report = _ingest(backend, write_jsonl(tmp_path / "mb.jsonl", rows))
    assert (report.stored, report.rejected) == (1, 1)
    assert Store(backend.resolved_database_url).get_voice("J2").metadata == {"备注": "ab", "嵌套": {"列表": [""]}}


def test_duplicate_ids(backend: Settings, tmp_path: Path) -> None:
    same = {"id": "D1", "created_at": "2026-11-17T09:00:00", "channel": "电话客服", "text": "同一条"}
    rows: list[dict[str, object]] = [same, same, same | {"text": "同一编号不同内容"}]
    report = _ingest(backend, write_jsonl(tmp_path / "dup.jsonl", rows))
    assert (report.stored, report.duplicate, report.rejected) == (1, 1, 1)
    reject = json.loads(Path(report.rejects_path or "").read_text(encoding="utf-8"))
    assert "编号冲突" in reject["reason"] and reject["raw"]["text"] == "同一编号不同内容"


@pytest.mark.parametrize(("value", "expected"), [
    (46342.375, datetime(2026, 11, 16, 9, 0, tzinfo=LOCAL_TZ)),
    ("46342.375", datetime(2026, 11, 16, 9, 0, tzinfo=LOCAL_TZ)),
    (1763168400, datetime(2025, 11, 15, 9, 0, tzinfo=LOCAL_TZ)),
    (1e20, None), (-1e20, None), ("9999-12-31", None), ("0001-01-01", None), ("1970-01-01", None),
    (float("nan"), None), (True, None), ([2026, 11, 1], None),
])
def test_extreme_and_excel_serial_dates(backend: Settings, tmp_path: Path, value: Any,
                                        expected: datetime | None) -> None:
    path = tmp_path / "dates.jsonl"
    path.write_text(json.dumps({"id": "T1", "created_at": value, "channel": "电话客服", "text": "日期"}) + "\n",
                    encoding="utf-8")
    report = _ingest(backend, path)
    if expected is None:
        assert report.rejected == 1 and "受理时间" in next(iter(report.reasons))
    else:
        assert Store(backend.resolved_database_url).get_voice("T1").created_at == expected


def test_unknown_channels_and_values_are_kept(backend: Settings, tmp_path: Path) -> None:
    rows = [_row("U1", "排队", 受理渠道="95588热线"), _row("U2", "闪退", 受理渠道="手机银行"),
            _row("U3", "转人工", 受理渠道="微信银行"), _row("U4", "柜员态度", 受理渠道="网点"),
            _row("U5", "看不懂", 受理渠道="火星渠道", 客群="VIP钻石", 业务类型="外汇")]
    report = _ingest(backend, _csv(tmp_path / "unknown.csv", rows))
    assert (report.stored, report.rejected) == (5, 0)
    store = Store(backend.resolved_database_url)
    assert [store.get_voice(f"U{i}").channel.value for i in range(1, 6)] == [
        "电话客服", "APP意见反馈", "在线客服", "网点意见簿", "其他渠道"]
    odd = store.get_voice("U5")
    assert odd.business is not None and odd.business.value == "其他" and odd.customer_segment.value == "个人"
    assert odd.metadata["原始渠道"] == "火星渠道" and odd.metadata["原始业务"] == "外汇"
    assert report.warnings == {"未知渠道": 1, "未知业务": 1}


def test_malformed_jsonl_lines(backend: Settings, tmp_path: Path) -> None:
    good = {"id": "L1", "created_at": "2026-11-17T09:00:00", "channel": "电话客服", "text": "好"}
    lines = [json.dumps(good), "{not json", "[1, 2]", "null", '"字符串"', "{" * 5000 + "}" * 5000, "",
             json.dumps(good | {"id": "L2", "text": "也好"})]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = _ingest(backend, path)
    assert (report.rows, report.stored, report.rejected) == (7, 2, 5)


def test_every_sheet_merged_cells_and_excel_dates(backend: Settings, tmp_path: Path) -> None:
    book = Workbook()
    first = book.active
    first.title = "十一月"
    first.append(HEADERS)
    for i in range(3):
        first.append([f"X{i}", 46342.375 + i, "热线" if i == 0 else None, None, "老年", "借记卡", f"第{i}条", None])
    first.merge_cells("C2:C4")  # one 渠道 cell spans three tickets
    second = book.create_sheet("补录")
    second.append(HEADERS)
    second.append(["Y1", datetime(2026, 11, 18, 10, 0), "在线", None, None, "手机银行", "补录一条", 13912345678])
    second.append(["Y2", "not a date", "在线", None, None, "手机银行", "坏日期", None])
    book.create_sheet("空表")
    book.save(tmp_path / "book.xlsx")
    report = _ingest(backend, tmp_path / "book.xlsx")
    assert (report.rows, report.stored, report.rejected) == (5, 4, 1)
    store = Store(backend.resolved_database_url)
    assert [store.get_voice(f"X{i}").channel.value for i in range(3)] == ["电话客服"] * 3
    assert store.get_voice("X0").created_at == datetime(2026, 11, 16, 9, 0, tzinfo=LOCAL_TZ)
    y1 = store.get_voice("Y1")
    assert y1.metadata["工作表"] == "补录" and "13912345678" not in json.dumps(y1.metadata)


def test_empty_and_binary_files(backend: Settings, tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    assert _ingest(backend, tmp_path / "empty.csv").rows == 0
    (tmp_path / "header_only.csv").write_text(",".join(HEADERS) + "\n", encoding="utf-8")
    assert _ingest(backend, tmp_path / "header_only.csv").rows == 0
    (tmp_path / "blob.csv").write_bytes(bytes(range(256)) * 64)
    with pytest.raises(IngestError, match="不是文本文件"):
        Ingestor(Store(backend.resolved_database_url), backend).ingest_file(tmp_path / "blob.csv")
    (tmp_path / "fake.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(IngestError, match="无法打开工作簿"):
        Ingestor(Store(backend.resolved_database_url), backend).ingest_file(tmp_path / "fake.xlsx")


# ---------------------------------------------------------------- failures part-way

def test_a_row_that_breaks_the_code_is_rejected_alone(backend: Settings, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import voc.ingest_rows

    real: Callable[[str], str] = voc.ingest_rows.mask_text

    def exploding(text: str) -> str:
        if "炸" in text:
            raise RuntimeError("boom")
        return real(text)

    monkeypatch.setattr(voc.ingest_rows, "mask_text", exploding)
    report = _ingest(backend, _csv(tmp_path / "boom.csv", [_row("B1", "好"), _row("B2", "炸"), _row("B3", "好的")]))
    assert (report.stored, report.rejected) == (2, 1)


def test_a_row_the_database_refuses_is_rejected_alone(backend: Settings, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    real = Ingestor._row

    def broken(self: Ingestor, *args: Any) -> dict[str, Any]:
        row = real(self, *args)
        return row | {"text": None} if row["id"] == "R2" else row  # NOT NULL violated in the database

    monkeypatch.setattr(Ingestor, "_row", broken)
    rows = [_row(f"R{i}", f"第{i}条") for i in range(1, 6)]
    report = _ingest(backend, _csv(tmp_path / "refused.csv", rows))
    assert (report.stored, report.rejected) == (4, 1)
    assert "数据库拒绝" in next(iter(report.reasons))


def test_a_file_that_breaks_part_way_keeps_what_came_before(backend: Settings, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import voc.ingest

    real = voc.ingest.read_rows

    def failing(path: Path, notes: Any = None) -> Any:
        for number, row in real(path, notes):
            if number == 6:
                raise OSError("disk went away")
            yield number, row

    monkeypatch.setattr(voc.ingest, "read_rows", failing)
    settings = backend.model_copy(update={"ingest_batch_size": 2})
    rows = [_row(f"P{i}", f"第{i}条") for i in range(1, 5)] + [_row("P5", "")] + [_row("P6", "读不到")]
    report = _ingest(settings, _csv(tmp_path / "partial.csv", rows))
    assert (report.rows, report.stored, report.rejected) == (5, 4, 1) and report.error
    assert report.rejects_path and Path(report.rejects_path).exists()


def test_cli_goes_on_to_the_next_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from voc.cli import app

    monkeypatch.setenv("VOC_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    (tmp_path / "blob.csv").write_bytes(bytes(range(256)) * 64)
    good = _csv(tmp_path / "good.csv", [_row("C1", "好")])
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "missing.csv"), str(tmp_path / "blob.csv"), str(good)])
    get_settings.cache_clear()
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "文件不存在" in result.output and "不是文本文件" in result.output
    assert Store(f"sqlite:///{tmp_path / 'data' / 'voc.db'}").get_voice("C1") is not None


def test_unwritable_storage_is_one_line_not_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run as root, so a chmod would not stop them: the data directory sits under a file,
    and the database is opened read-only by SQLite itself."""
    from voc.cli import app

    good = _csv(tmp_path / "good.csv", [_row("W1", "好")])
    (tmp_path / "a_file").write_text("x", encoding="utf-8")
    monkeypatch.setenv("VOC_DATA_DIR", str(tmp_path / "a_file" / "data"))
    get_settings.cache_clear()
    under_a_file = CliRunner().invoke(app, ["ingest", str(good)])
    readonly_db = tmp_path / "ro" / "voc.db"
    Store(f"sqlite:///{readonly_db}")  # the schema exists, then the file is opened read-only
    monkeypatch.setenv("VOC_DATA_DIR", str(tmp_path / "ro"))
    monkeypatch.setenv("VOC_DATABASE_URL", f"sqlite:///file:{readonly_db}?mode=ro&uri=true")
    get_settings.cache_clear()
    read_only = CliRunner().invoke(app, ["ingest", str(good)])
    get_settings.cache_clear()
    for result in (under_a_file, read_only):
        assert result.exit_code == 2, result.output
        assert "无法写入" in result.output and "Traceback" not in result.output
        assert len([line for line in result.output.splitlines() if "错误：" in line]) == 1


def test_run_ids_are_unique_within_a_second() -> None:
    from agents.runner import new_run_id
    from voc.periods import parse_week

    assert len({new_run_id(parse_week("2026-W47"), "offline") for _ in range(200)}) == 200


def test_personal_data_in_ids_file_names_and_fake_pseudonyms(backend: Settings, tmp_path: Path) -> None:
    rows: list[dict[str, object]] = [
        {"id": "13912345678", "created_at": "2026-11-17T09:00:00", "channel": "电话客服", "text": "工单号就是手机号",
         "customer_id": "CUST-13912345678"},
        {"id": "OK-1", "created_at": "2026-11-17T09:00:00", "channel": "电话客服", "text": ""},
    ]
    path = write_jsonl(tmp_path / "张三_13912345678.jsonl", rows)
    first, again = _ingest(backend, path), _ingest(backend, path)
    assert (first.stored, first.rejected, again.already_stored) == (1, 1, 1)
    with Store(backend.resolved_database_url).session() as session:
        stored = session.scalars(select(VoiceRow)).one()
    assert stored.id.startswith("VID-") and "13912345678" not in f"{stored.id}{stored.customer_id}{stored.source_file}"
    assert stored.customer_id is not None and stored.customer_id != "CUST-13912345678"
    rejects = Path(first.rejects_path or "")
    assert "13912345678" not in rejects.name + rejects.read_text(encoding="utf-8")


def test_a_broken_pseudonym_key_stops_before_the_first_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from voc.cli import app

    data = tmp_path / "data"
    data.mkdir()
    (data / "pii.key").write_text("", encoding="ascii")
    monkeypatch.setenv("VOC_DATA_DIR", str(data))
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["ingest", str(_csv(tmp_path / "x.csv", [_row("K1", "好")]))])
    get_settings.cache_clear()
    assert result.exit_code == 2 and "pii.key" in "".join(result.output.split()) and "Traceback" not in result.output
