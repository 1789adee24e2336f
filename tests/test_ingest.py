import csv
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from tests.conftest import write_jsonl
from voc.config import Settings
from voc.ingest import ColumnMap, IngestError, Ingestor
from voc.models import LOCAL_TZ
from voc.storage import Store, VoiceRow

BANK_HEADERS = ["工单编号", "受理时间", "受理渠道", "客户号", "客群", "业务类型", "客户诉求", "坐席工号"]
BANK_ROWS = [
    ["T001", "2026/11/17 09:30", "热线", "C10000001", "老年", "储蓄卡", "社保卡激活要跑三趟，太麻烦了", "A17"],
    ["T002", "2026/11/17 10:05", "投诉", "C10000002", "零售", "信用卡业务",
     "王先生投诉年费被扣了两次，电话13912345678", "A02"],
    ["T003", "2026-13-01 10:00", "热线", "C10000003", "零售", "借记卡", "日期写错的一行", "A03"],
]


def ingest(settings: Settings, store: Store, path: Path, column_map: Path | None = None):
    return Ingestor(store, settings, ColumnMap.load(column_map)).ingest_file(path)


def stored_rows(store: Store) -> list[VoiceRow]:
    with store.session() as session:
        return list(session.scalars(select(VoiceRow).order_by(VoiceRow.id)))


def write_bank_csv(path: Path, encoding: str) -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(BANK_HEADERS)
        writer.writerows(BANK_ROWS)
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_bank_csv_in_any_encoding_maps_masks_and_rejects(settings, store, tmp_path, encoding) -> None:
    report = ingest(settings, store, write_bank_csv(tmp_path / "export.csv", encoding))
    assert (report.rows, report.stored, report.duplicate, report.rejected) == (3, 2, 0, 1)
    rows = {r.id: r for r in stored_rows(store)}
    assert rows["T001"].channel == "电话客服" and rows["T001"].customer_segment == "老年客户"
    assert rows["T001"].business == "借记卡" and rows["T001"].meta == {"坐席工号": "A17"}
    assert rows["T002"].text == "[姓名]投诉年费被扣了两次，电话[手机号]"
    assert rows["T002"].customer_id.startswith("CUST-")
    reject = json.loads(Path(report.rejects_path).read_text(encoding="utf-8").splitlines()[0])
    assert reject["row"] == 3 and "受理时间" in reject["reason"] and reject["file"].endswith("export.csv")


def test_custom_column_map_file(settings, store, tmp_path) -> None:
    path = tmp_path / "own.csv"
    path.write_text("单号,日期,来源,意见\nX1,2026-11-18 08:00,热线,转人工太难了\n", encoding="utf-8")
    mapping = tmp_path / "map.yaml"
    mapping.write_text("columns:\n  单号: id\n  日期: created_at\n  来源: channel\n  意见: text\n", encoding="utf-8")
    report = ingest(settings, store, path, mapping)
    assert report.stored == 1 and store.get_voice("X1").text == "转人工太难了"


def test_column_map_onto_unknown_field_is_a_clear_error(tmp_path) -> None:
    mapping = tmp_path / "bad.yaml"
    mapping.write_text("columns:\n  单号: ticket\n", encoding="utf-8")
    with pytest.raises(IngestError, match="未知字段"):
        ColumnMap.load(mapping)


def test_xlsx(settings, store, tmp_path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(BANK_HEADERS)
    sheet.append(["X9", datetime(2026, 11, 19, 14, 0), "在线", None, None, "手机银行", "APP闪退", None])
    sheet.append([None] * len(BANK_HEADERS))  # a blank row in a workbook is formatting, not a row
    sheet.append(["X10", datetime(2026, 11, 19, 15, 0), "在线", None, None, "手机银行", None, None])
    book.save(tmp_path / "export.xlsx")
    report = ingest(settings, store, tmp_path / "export.xlsx")
    assert (report.stored, report.rejected) == (1, 1)
    voice = store.get_voice("X9")
    assert voice.created_at == datetime(2026, 11, 19, 14, 0, tzinfo=LOCAL_TZ)


def test_counts_add_up_and_reingest_stores_nothing_new(settings, store, tmp_path) -> None:
    rows = [
        {"id": "a", "created_at": "2026-11-17T09:00:00", "channel": "电话客服", "customer_id": "13800000001",
         "text": "验证码一直收不到"},
        {"id": "b", "created_at": "2026-11-17T11:00:00", "channel": "在线客服", "customer_id": "13800000001",
         "text": "验证码一直收不到！！"},
        {"id": "c", "created_at": "2026-11-25T11:00:00", "channel": "在线客服", "customer_id": "13800000001",
         "text": "验证码一直收不到"},
        {"id": "d", "created_at": "2026-11-17T09:00:00", "channel": "不存在的渠道", "text": "x"},  # kept as 其他渠道
        {"id": "e", "created_at": "2026-11-17T09:00:00", "channel": "电话客服", "text": "   "},
        {"id": "f", "channel": "电话客服", "text": "没有时间"},
    ]
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("{not json\n")
    first = ingest(settings, store, path)
    assert first.balanced and first.rows == 7
    assert (first.stored, first.linked, first.rejected) == (3, 1, 3)
    linked = {r.id: r.duplicate_of for r in stored_rows(store)}
    assert linked == {"a": None, "b": "a", "c": None, "d": None}  # c is outside the 72 h window
    assert store.get_voice("d").metadata == {"原始渠道": "不存在的渠道"} and first.warnings == {"未知渠道": 1}
    rejects = [json.loads(line) for line in Path(first.rejects_path).read_text(encoding="utf-8").splitlines()]
    assert [r["row"] for r in rejects] == [5, 6, 7]
    assert rejects[2]["raw"] == "{not json"
    second = ingest(settings, store, path)
    assert second.balanced and (second.stored, second.already_stored, second.rejected) == (0, 4, 3)
    assert len(stored_rows(store)) == 4


def test_same_id_with_different_text_is_rejected_not_overwritten(settings, store, tmp_path) -> None:
    row = {"id": "z", "created_at": "2026-11-17T09:00:00", "channel": "电话客服", "text": "原话"}
    ingest(settings, store, write_jsonl(tmp_path / "a.jsonl", [row]))
    report = ingest(settings, store, write_jsonl(tmp_path / "b.jsonl", [row | {"text": "改过的话"}]))
    assert report.rejected == 1 and store.get_voice("z").text == "原话"


def test_exact_copies_without_customer_are_linked_but_common_questions_are_not(settings, store, tmp_path) -> None:
    base = {"created_at": "2026-11-17T09:00:00", "channel": "智能客服机器人", "text": "怎么查余额"}
    rows = [base | {"id": "r1"}, base | {"id": "r2"}, base | {"id": "r3", "created_at": "2026-11-17T09:05:00"}]
    report = ingest(settings, store, write_jsonl(tmp_path / "robot.jsonl", rows))
    assert (report.stored, report.linked) == (2, 1)


def test_ids_are_derived_when_missing_so_reingest_is_idempotent(settings, store, tmp_path) -> None:
    rows = [{"created_at": "2026-11-17 09:00", "channel": "热线", "text": "热线排队太久"}]
    path = write_jsonl(tmp_path / "noid.jsonl", rows)
    assert ingest(settings, store, path).stored == 1
    assert ingest(settings, store, path).already_stored == 1


def test_timezones(settings, store, tmp_path) -> None:
    rows = [{"id": "n", "created_at": "2026-11-17T23:30:00", "channel": "电话客服", "text": "naive"},
            {"id": "u", "created_at": "2026-11-17T23:30:00Z", "channel": "电话客服", "text": "utc"}]
    ingest(settings, store, write_jsonl(tmp_path / "tz.jsonl", rows))
    naive, utc = store.get_voice("n"), store.get_voice("u")
    assert naive.created_at == datetime(2026, 11, 17, 15, 30, tzinfo=UTC)
    rows_by_id = {r.id: r for r in stored_rows(store)}
    assert str(rows_by_id["n"].local_date) == "2026-11-17" and str(rows_by_id["u"].local_date) == "2026-11-18"
    assert rows_by_id["u"].iso_week == "2026-W47"
    assert utc.created_at.tzinfo is not None


def test_nothing_unmasked_reaches_the_store(settings, store, tmp_path) -> None:
    rows = [{"id": f"p{i}", "created_at": "2026-11-17T09:00:00", "channel": "投诉工单", "customer_id": "13700001111",
             "text": f"张先生{i}号说卡号6222021234567890128、手机13700001111、邮箱a{i}@qq.com",
             "metadata": {"callback": "13700001111"}} for i in range(3)]
    ingest(settings, store, write_jsonl(tmp_path / "pii.jsonl", rows))
    dump = json.dumps([[r.text, r.meta, r.customer_id] for r in stored_rows(store)], ensure_ascii=False)
    assert not re.search(r"\d{11}|@qq\.com|张先生", dump)


def test_unmasked_only_when_explicitly_allowed(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path / "raw", allow_unmasked_pii=True)
    store = Store(settings.resolved_database_url)
    rows = [{"id": "raw", "created_at": "2026-11-17T09:00:00", "channel": "电话客服", "text": "手机13700001111"}]
    Ingestor(store, settings).ingest_file(write_jsonl(tmp_path / "raw.jsonl", rows))
    assert store.get_voice("raw").text == "手机13700001111"


def test_unreadable_files_are_clear_errors(settings, store, tmp_path) -> None:
    with pytest.raises(IngestError, match="文件不存在"):
        ingest(settings, store, tmp_path / "missing.csv")
    (tmp_path / "data.parquet").write_bytes(b"x")
    with pytest.raises(IngestError, match="不支持的文件类型"):
        ingest(settings, store, tmp_path / "data.parquet")
