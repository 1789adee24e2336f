"""A corpus of the ways personal data is written in Chinese bank complaints, masked one by one and
then carried through everything the product writes: the store, Chroma, the embedding cache, the
checkpoints, the run outputs, the report, the rejects file, the API and the MCP tools. No raw
value may survive anywhere, in its written form or as plain digits."""

from __future__ import annotations

import asyncio
import csv
import json
import re
import sqlite3
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import copy_of_kb, write_jsonl
from voc.config import Settings
from voc.knowledge_base import KnowledgeBase
from voc.pii import (
    CARD,
    EMAIL,
    ID_NUMBER,
    MOBILE,
    NAME,
    PASSPORT,
    id_check_char,
    is_id_number,
    is_old_id_number,
    luhn_valid,
    mask_text,
    normalize_for_matching,
)

# (text as a customer or agent writes it, the token it must become, the raw value that must disappear)
CORPUS: list[tuple[str, str, str]] = [
    # mobiles
    ("我的手机13912345678收不到验证码", MOBILE, "13912345678"),
    ("电话：139 1234 5678，麻烦回电", MOBILE, "139 1234 5678"),
    ("回拨139-1234-5678就行", MOBILE, "139-1234-5678"),
    ("号码是139.1234.5678", MOBILE, "139.1234.5678"),
    ("打139 - 1234 - 5678找我", MOBILE, "139 - 1234 - 5678"),
    ("联系号码139_1234_5678", MOBILE, "139_1234_5678"),
    ("境外打 +86 139 1234 5678", MOBILE, "+86 139 1234 5678"),
    ("国际号码+8613912345678", MOBILE, "+8613912345678"),
    ("拨0086 13912345678未接通", MOBILE, "0086 13912345678"),
    ("号码0086-139-1234-5678", MOBILE, "0086-139-1234-5678"),
    ("电话(+86)139-1234-5678", MOBILE, "139-1234-5678"),
    ("电话（+86）13912345678", MOBILE, "13912345678"),
    ("手机一三九一二三四五六七八", MOBILE, "一三九一二三四五六七八"),
    ("手机一三九 一二三四 五六七八收不到短信", MOBILE, "一三九 一二三四 五六七八"),
    ("号码幺三九幺二三四五六七八", MOBILE, "幺三九幺二三四五六七八"),
    ("号码壹叁玖壹贰叁肆伍陆柒捌", MOBILE, "壹叁玖壹贰叁肆伍陆柒捌"),
    ("手机１３９１２３４５６７８停机了", MOBILE, "１３９１２３４５６７８"),
    ("手机１３９\u3000１２３４\u3000５６７８", MOBILE, "１３９\u3000１２３４\u3000５６７８"),
    ("号码139一二三四5678", MOBILE, "139一二三四5678"),
    ("我的手机号是15800001111一直收不到", MOBILE, "15800001111"),
    ("联系方式：186 0000 2222。", MOBILE, "186 0000 2222"),
    ("座机010-62345678白天没人", MOBILE, "010-62345678"),
    ("单位电话 0755 2345 6789", MOBILE, "0755 2345 6789"),
    ("手机尾号5678收不到短信", MOBILE, "尾号5678"),
    ("家里座机(021)62345678没人接", MOBILE, "(021)62345678"),
    ("座机（０２１）６２３４５６７８白天没人", MOBILE, "（０２１）６２３４５６７８"),
    ("打021-52345678找我", MOBILE, "021-52345678"),
    ("公司电话0755 8888 6666转人事", MOBILE, "0755 8888 6666"),
    ("境外打+86 (139) 2234 5678", MOBILE, "+86 (139) 2234 5678"),
    ("手机号 1 3 9 1 2 3 4 5 6 7 8 收不到", MOBILE, "1 3 9 1 2 3 4 5 6 7 8"),
    ("回拨1-3-7-1-2-3-4-5-6-7-8就行", MOBILE, "1-3-7-1-2-3-4-5-6-7-8"),
    ("号码幺 三 六 幺 二 三 四 五 六 七 八", MOBILE, "幺 三 六 幺 二 三 四 五 六 七 八"),
    ("我的手机139****5678收不到验证码", MOBILE, "139****5678"),
    # ID numbers
    ("身份证11010519491231002X丢了", ID_NUMBER, "11010519491231002X"),
    ("身份证号11010519491231002x", ID_NUMBER, "11010519491231002x"),
    ("证件号码440301198507150000过期了", ID_NUMBER, "440301198507150000"),
    ("身份证110105 19491231 002X", ID_NUMBER, "110105 19491231 002X"),
    ("身份证 1101 0519 4912 3100 2X 核对不上", ID_NUMBER, "1101 0519 4912 3100 2X"),
    ("证件号320106-19900101-1238", ID_NUMBER, "320106-19900101-1238"),
    ("身份证１１０１０５１９４９１２３１００２Ｘ", ID_NUMBER, "１１０１０５１９４９１２３１００２Ｘ"),
    ("老身份证110105491231002还能用吗", ID_NUMBER, "110105491231002"),
    ("旧证号 510102 781120 456 已升位", ID_NUMBER, "510102 781120 456"),
    ("身份证一一〇一〇五一九四九一二三一〇〇二X", ID_NUMBER, "一一〇一〇五一九四九一二三一〇〇二X"),
    # bank cards
    ("卡号6222021234567890128被吞了", CARD, "6222021234567890128"),
    ("我的卡6222021234567894用不了", CARD, "6222021234567894"),
    ("卡号 6222 0212 3456 7894", CARD, "6222 0212 3456 7894"),
    ("这张 6222 0212 3456 7890 128 被锁", CARD, "6222 0212 3456 7890 128"),
    ("卡号6222-0212-3456-7894", CARD, "6222-0212-3456-7894"),
    ("我的卡6222021234 567890128被吞了", CARD, "6222021234 567890128"),
    ("借记卡 621700 0012345678907 挂失", CARD, "621700 0012345678907"),
    ("信用卡4367429876543216逾期", CARD, "4367429876543216"),
    ("622848123456789012这张卡", CARD, "622848123456789012"),
    ("卡号6222021234567890123被冻结", CARD, "6222021234567890123"),
    ("账号：62220212345678901", CARD, "62220212345678901"),
    ("账户 6217 0000 1234 5678 901 被冻结", CARD, "6217 0000 1234 5678 901"),
    ("帐号是622202123456", CARD, "622202123456"),
    ("卡号６２２２０２１２３４５６７８９０１２８", CARD, "６２２２０２１２３４５６７８９０１２８"),
    ("卡号六二二二零二一二三四五六七八九零一二八", CARD, "六二二二零二一二三四五六七八九零一二八"),
    ("6222021234 567890124 卡被吞了", CARD, "6222021234 567890124"),
    ("卡号是 6222 0212 3456 7890 125", CARD, "6222 0212 3456 7890 125"),
    ("尾号1234的卡被冻结", CARD, "尾号1234"),
    ("卡号后四位是8888", CARD, "后四位是8888"),
    # emails
    ("邮箱zhang.san@example.com收不到账单", EMAIL, "zhang.san@example.com"),
    ("邮箱 ZHANG.SAN@EXAMPLE.COM", EMAIL, "ZHANG.SAN@EXAMPLE.COM"),
    ("发到li_si＠qq.com", EMAIL, "li_si＠qq.com"),
    ("wang.wu@mail.bank.com.cn 没收到", EMAIL, "wang.wu@mail.bank.com.cn"),
    ("QQ邮箱12345678@qq.com", EMAIL, "12345678@qq.com"),
    ("邮箱ｌｉｕ＠ｅｘａｍｐｌｅ．ｃｏｍ", EMAIL, "ｌｉｕ＠ｅｘａｍｐｌｅ．ｃｏｍ"),
    ("user+bill@sub.example.org 退信", EMAIL, "user+bill@sub.example.org"),
    ("账单发到zhangsan(at)qq.com", EMAIL, "zhangsan(at)qq.com"),
    ("邮箱是 zhang san @ qq . com", EMAIL, "zhang san @ qq . com"),
    # names
    ("张先生说他等了很久", NAME, "张先生"),
    ("关先生来电投诉", NAME, "关先生"),
    ("欧阳娜娜女士反映", NAME, "欧阳娜娜"),
    ("司马先生要求回电", NAME, "司马先生"),
    ("客户王某某来电反映", NAME, "王某某"),
    ("我叫李四今天来办卡", NAME, "李四"),
    ("户名：诸葛亮，核对不上", NAME, "诸葛亮"),
    ("联系人赵六反映", NAME, "赵六"),
    ("客户姓名：李小红", NAME, "李小红"),
    ("我叫陈建国，想问一下", NAME, "陈建国"),
    ("姓名: 孙悦", NAME, "孙悦"),
    ("持卡人：刘德明要求销户", NAME, "刘德明"),
    ("上官婉儿女士反映", NAME, "上官婉儿"),
    ("张三丰先生来过两次", NAME, "张三丰"),
    ("名字叫周杰想问", NAME, "周杰"),
    ("大堂的黄经理态度差", NAME, "黄经理"),
    ("姓名 张伟，卡被冻结", NAME, "张伟"),
    ("户名 司马光核对不上", NAME, "司马光"),
    ("户名 欧阳娜娜，要求销户", NAME, "欧阳娜娜"),
    ("联系人 钱七反映", NAME, "钱七"),
    ("联系人：Zhang San，电话打不通", NAME, "Zhang San"),
    # passports and permits
    ("护照号E12345678过期了", PASSPORT, "E12345678"),
    ("护照号：EA1234567", PASSPORT, "EA1234567"),
    ("港澳通行证C12345678办不了业务", PASSPORT, "C12345678"),
    ("台胞证08123457无法开户", PASSPORT, "08123457"),
]

# Ordinary text that looks a little like personal data and must be stored as written.
ORDINARY: list[str] = [
    "转账5000元，2026年11月3日 10:30 到账", "2026-11-03 10:30:00 登录失败", "订单号20261117000123456金额5000元",
    "APP升级到8.2.1版本后闪退", "版本 10.2.3.4567 闪退", "打95588转人工", "打 9 5 5 8 8 转人工", "第1-3季度的账单",
    "等了10-20分钟", "营业时间 9:00-17:00", "客服电话 400-820-0588", "请拨打 010-95588", "验证码 1 2 3 4 5 6",
    "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15", "(2026)12345678号文件", "请在(30)分钟内完成", "金额(元) 1,234.56",
    "分12期，每期833.33元，共9996元", "卡里余额 12000 元", "10000元存到卡里", "流水号2026111700012345",
    "姓名栏填错了", "户名与卡号不符", "联系人信息不全", "姓名 和 电话都对", "联系人：无", "证件类型：护照",
    "护照过期了，2026年12月到期", "通行证办理要10个工作日", "证件有效期至2030年1月1日", "见附件(at)",
    "手机号码 139****", "电话[手机号]，卡号[银行卡号]，护照号[证件号]，姓名 [姓名]，邮箱[邮箱]",
]

_SEPARATORS = re.compile(r"[\s.\-_–—·]")


def digits_form(raw: str) -> str:
    """The raw value as plain digits (NFKC, Chinese numerals, separators gone): '139 1234 5678' → 13912345678."""
    return _SEPARATORS.sub("", normalize_for_matching(raw))


def test_corpus_is_large_and_covers_every_kind() -> None:
    assert len(CORPUS) >= 60
    assert {token for _, token, _ in CORPUS} == {MOBILE, ID_NUMBER, CARD, EMAIL, NAME, PASSPORT}
    assert all(raw in text for text, _, raw in CORPUS)


def test_corpus_ids_and_cards_are_real_shapes() -> None:
    """IDs have real birth dates (most with the right check character), cards without a card word pass Luhn."""
    ids = [digits_form(raw).upper() for _, token, raw in CORPUS if token == ID_NUMBER]
    assert all(is_id_number(i) or is_old_id_number(i) for i in ids)
    assert sum(len(i) == 18 and id_check_char(i[:17]) == i[17] for i in ids) >= 6
    cards = [digits_form(raw) for text, token, raw in CORPUS
             if token == CARD and not re.search(r"卡号|账号|账户|帐号|尾号|后四位|\d ?卡", text)]
    assert len(cards) >= 6 and all(luhn_valid(c) for c in cards)


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_is_kept_as_written(text: str) -> None:
    assert mask_text(text) == text


@pytest.mark.parametrize(("text", "token", "raw"), CORPUS)
def test_corpus_form_is_masked(text: str, token: str, raw: str) -> None:
    masked = mask_text(text)
    assert token in masked, masked
    assert raw not in masked, masked
    assert not re.search(r"\d{7,}", digits_form(masked)), masked
    if token == NAME:  # the name itself is gone, not only the name with its title
        assert re.sub("先生|女士|经理", "", raw) not in masked, masked
    assert mask_text(masked) == masked


# ---------------------------------------------------------------- end to end

WEEK = "2026-W47"
THEMES = ("手机银行登录收不到短信验证码，太耽误事了", "信用卡年费被重复扣收，非常不满意",
          "热线排队太久一直转不到人工，很生气")

# Values that only appear in metadata, the customer id column or rejected rows.
META_VALUES = {
    "mobile_meta": "13700001111", "card_meta": "6222021234567894", "id_meta": "320106199001011238",
    "name_meta": "欧阳修远", "email_meta": "meta.user@example.net", "customer": "13600002222",
    "xlsx_mobile": "13500003333", "xlsx_card": "6217000012345678907", "xlsx_id": "110105194912310021",
    "reject_mobile": "18800004444", "reject_name": "慕容复", "reject_card": "4367429876543216",
    "reject_field": "18900005555", "passport_meta": "E87654321", "landline_meta": "0755-88886666",
}
XLSX_CARD_FLOAT = 6.217000012345679e18  # how a workbook keeps a 19-digit number: a float
XLSX_FLOATS = ("6.217000012345679", "1.1010519491231")  # the card and the ID as the XLSX writes them


def corpus_rows() -> tuple[list[dict[str, Any]], list[list[Any]], list[list[Any]]]:
    """The corpus spread over a JSONL, a CSV and an XLSX file (with one rejected row in each)."""
    start = datetime(2026, 11, 16, 8, 0)
    jsonl: list[dict[str, Any]] = []
    csv_rows: list[list[Any]] = []
    xlsx_rows: list[list[Any]] = []
    for n, (text, _, _) in enumerate(CORPUS):
        created = (start + timedelta(minutes=97 * n)).strftime("%Y-%m-%d %H:%M:%S")
        body = f"{THEMES[n % 3]}。{text}。请尽快处理！"
        if n % 5 == 3:
            csv_rows.append([f"C{n:03d}", created, "投诉", META_VALUES["customer"] if n == 3 else f"K{n}", body,
                             "139 0000 7777" if n == 3 else META_VALUES["mobile_meta"], META_VALUES["card_meta"],
                             json.dumps({"联系人": META_VALUES["name_meta"], "证件": META_VALUES["id_meta"],
                                         "备注": text}, ensure_ascii=False),
                             json.dumps({"手机号": META_VALUES["mobile_meta"], "户名": META_VALUES["name_meta"]},
                                        ensure_ascii=False), "处理中"])
        elif n % 5 == 4:
            xlsx_rows.append([f"X{n:03d}", created, "在线", f"K{n}", body, int(META_VALUES["xlsx_mobile"]),
                              XLSX_CARD_FLOAT, int(META_VALUES["xlsx_id"]), 2])
        else:
            jsonl.append({"id": f"J{n:03d}", "created_at": created, "channel": "电话客服", "customer_id": f"K{n}",
                          "text": body, "联系电话": META_VALUES["mobile_meta"], "卡号": META_VALUES["card_meta"],
                          "座机": META_VALUES["landline_meta"], "工单状态": "处理中", "priority": 3,
                          "详情": {"客户": {"姓名": META_VALUES["name_meta"], "邮箱": META_VALUES["email_meta"],
                                            "证件号": META_VALUES["id_meta"],
                                            "护照号": META_VALUES["passport_meta"]},
                                   "记录": [text, int(META_VALUES["mobile_meta"])]}})
    jsonl.append({"id": "J-reject", "channel": "电话客服", "customer_id": META_VALUES["reject_mobile"],
                  "text": f"联系人{META_VALUES['reject_name']}，卡{META_VALUES['reject_card']}，没有受理时间",
                  "联系电话": META_VALUES["reject_mobile"], "联系人": META_VALUES["reject_name"]})
    csv_rows.append(["C-reject", "", "热线", META_VALUES["reject_mobile"],
                     f"我叫{META_VALUES['reject_name']}，没有时间", META_VALUES["reject_mobile"],
                     META_VALUES["reject_card"], "{}", json.dumps({"联系电话": META_VALUES["reject_field"]}), "新建"])
    xlsx_rows.append(["X-reject", None, "在线", None, "没有时间", int(META_VALUES["reject_mobile"]),
                      int(META_VALUES["reject_card"]), None, 1])
    return jsonl, csv_rows, xlsx_rows


CSV_HEADERS = ["工单编号", "受理时间", "受理渠道", "客户号", "客户诉求", "联系电话", "卡号", "附加信息", "扩展字段",
               "工单状态"]
XLSX_HEADERS = ["工单编号", "受理时间", "受理渠道", "客户号", "客户诉求", "手机", "账号", "身份证", "优先级"]


def raw_values() -> list[str]:
    """Every raw value, in its written form and as plain digits."""
    values = {raw for _, _, raw in CORPUS} | set(META_VALUES.values()) | {"139 0000 7777", *XLSX_FLOATS}
    values |= {digits_form(v) for v in values}
    # Tails (尾号5678) and short pieces are checked in the texts above; scanned as bytes they would
    # match unrelated data, so the scan looks for values of 7 characters or more (names: 2 or more).
    return sorted(v for v in values if len(v) >= 7 or not re.search(r"[\d@]", v))


def _forms(value: str) -> list[bytes]:
    """The bytes a value may be stored as: UTF-8, and JSON's ASCII escapes (SQLAlchemy's JSON columns)."""
    forms = {value.encode("utf-8"), json.dumps(value)[1:-1].encode("ascii")}
    return [f for f in forms if f]


def leaks_in(data: bytes | str, where: str, values: list[str]) -> list[str]:
    blob = data.encode("utf-8") if isinstance(data, str) else data
    return [f"{where}: {v!r}" for v in values for form in _forms(v) if form in blob]


@pytest.fixture(scope="module")
def scanned(loaded_kb: KnowledgeBase, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Ingest the corpus files, run the week, write the report; return the settings and what was made."""
    from openpyxl import Workbook

    from agents.runner import run_and_write
    from voc.ingest import Ingestor
    from voc.periods import parse_week
    from voc.report.data import build_report
    from voc.report.render import write_report
    from voc.storage import Store

    folder = tmp_path_factory.mktemp("pii")
    settings = copy_of_kb(loaded_kb, folder / "data")
    inputs = folder / "inputs"
    inputs.mkdir()
    jsonl, csv_rows, xlsx_rows = corpus_rows()
    with (inputs / "export.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_HEADERS)
        writer.writerows(csv_rows)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(XLSX_HEADERS)
    for row in xlsx_rows:
        sheet.append(row)
    book.save(inputs / "book.xlsx")
    store = Store(settings.resolved_database_url)
    ingestor = Ingestor(store, settings)
    reports = [ingestor.ingest_file(path) for path in
               (write_jsonl(inputs / "voices.jsonl", jsonl), inputs / "export.csv", inputs / "book.xlsx")]
    run_dir, _ = asyncio.run(run_and_write(settings, period=parse_week(WEEK), run_id="pii-run"))
    report_dir = folder / "report"
    written = write_report(build_report(store, run_dir, as_of=date(2026, 11, 23)), report_dir)
    return {"settings": settings, "reports": reports, "run_dir": run_dir, "report_dir": report_dir,
            "written": written, "store": store, "inputs": inputs}


def test_ingestion_kept_every_corpus_row_and_rejected_one_per_file(scanned: dict[str, Any]) -> None:
    reports = scanned["reports"]
    assert sum(r.rows for r in reports) == len(CORPUS) + 3
    assert [r.rejected for r in reports] == [1, 1, 1]
    assert sum(r.stored + r.duplicate for r in reports) == len(CORPUS)
    assert all(r.rejects_path and Path(r.rejects_path).is_file() for r in reports)


def test_the_scan_finds_every_raw_value_in_the_inputs(scanned: dict[str, Any]) -> None:
    """The control: the same scan over the input files (the XLSX unzipped) finds every written form,
    so an empty scan below means masked, not missed."""
    blob = b""
    for path in scanned["inputs"].iterdir():
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as book:
                blob += b"".join(book.read(name) for name in book.namelist())
        else:
            blob += path.read_bytes()
    written = ({raw for _, _, raw in CORPUS} | set(META_VALUES.values()) | set(XLSX_FLOATS)) - {
        META_VALUES["xlsx_card"], META_VALUES["xlsx_id"]}  # an XLSX keeps these as floats
    found = {leak.split(": ", 1)[1] for leak in leaks_in(blob, "inputs", sorted(written))}
    assert found == {repr(v) for v in written}


def test_metadata_is_masked_by_name_and_content_and_the_rest_kept(scanned: dict[str, Any]) -> None:
    store = scanned["store"]
    jsonl_voice = store.get_voice("J000")
    assert jsonl_voice is not None
    meta = jsonl_voice.metadata
    assert meta["联系电话"] == meta["座机"] == MOBILE and meta["卡号"] == CARD
    assert meta["工单状态"] == "处理中" and meta["priority"] == 3
    assert meta["详情"]["客户"] == {"姓名": NAME, "邮箱": EMAIL, "证件号": ID_NUMBER, "护照号": PASSPORT}
    assert meta["详情"]["记录"][1] == MOBILE
    csv_voice = store.get_voice("C003")
    assert csv_voice is not None and csv_voice.metadata["联系电话"] == MOBILE
    assert (csv_voice.metadata["联系人"], csv_voice.metadata["证件"]) == (NAME, ID_NUMBER)  # 附加信息: merged JSON
    assert json.loads(csv_voice.metadata["扩展字段"]) == {"手机号": MOBILE, "户名": NAME}  # a JSON string column
    assert csv_voice.metadata["工单状态"] == "处理中"
    xlsx_voice = store.get_voice("X004")
    assert xlsx_voice is not None
    assert (xlsx_voice.metadata["手机"], xlsx_voice.metadata["账号"], xlsx_voice.metadata["身份证"]) == (
        MOBILE, CARD, ID_NUMBER)
    assert xlsx_voice.metadata["优先级"] == 2


def _sqlite_dump(path: Path) -> str:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return "\n".join(connection.iterdump())
    finally:
        connection.close()


def _sqlite_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.read_bytes()[:16] == b"SQLite format 3\x00"]


def test_no_raw_value_in_any_file_written(scanned: dict[str, Any]) -> None:
    settings: Settings = scanned["settings"]
    values = raw_values()
    leaks: list[str] = []
    roots = (settings.resolved_data_dir, scanned["report_dir"])
    files = [p for root in roots for p in root.rglob("*") if p.is_file()]
    data_dir = settings.resolved_data_dir
    names = {p.relative_to(data_dir).parts[0] for p in files if data_dir in p.parents}
    assert {"voc.db", "chroma", "embeddings.sqlite", "checkpoints.sqlite", "rejects", "runs"} <= names, names
    for path in files:  # every file as bytes: SQLite pages (free ones too), Chroma segments, JSON, HTML, MD
        leaks += leaks_in(path.read_bytes(), str(path), values)
    for path in _sqlite_files(settings.resolved_data_dir):  # and every text column of every table
        leaks += leaks_in(_sqlite_dump(path), f"dump of {path.name}", values)
    assert not leaks, "\n".join(leaks)


def test_no_raw_value_in_the_pdf_text(scanned: dict[str, Any]) -> None:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(scanned["written"]["pdf"]))
    text = "\n".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    assert "客户心声" in text
    assert not leaks_in(text, "report.pdf", raw_values())


def test_the_report_quotes_masked_voices(scanned: dict[str, Any]) -> None:
    markdown = scanned["written"]["md"].read_text(encoding="utf-8").replace("\\[", "[").replace("\\]", "]")
    assert any(token in markdown for token in (MOBILE, CARD, ID_NUMBER, EMAIL, NAME))


def test_no_raw_value_in_the_api(scanned: dict[str, Any]) -> None:
    from fastapi.testclient import TestClient

    from app import create_app

    values = raw_values()
    leaks: list[str] = []
    with TestClient(create_app(scanned["settings"]), base_url="http://127.0.0.1:8080",
                    client=("127.0.0.1", 50000)) as client:
        after: str | None = None
        ids: list[str] = []
        while True:
            params: dict[str, str | int] = {"week": WEEK, "limit": 200}
            if after:
                params["after"] = after
            response = client.get("/api/voices", params=params)
            assert response.status_code == 200, response.text
            leaks += leaks_in(response.content, "/api/voices", values)
            page = response.json()
            ids += [item["id"] for item in page["items"]]
            after = page.get("next_cursor")
            if not after:
                break
        assert len(ids) >= len(CORPUS) - 5
        for voice_id in ids:
            response = client.get(f"/api/voices/{voice_id}")
            assert response.status_code == 200
            leaks += leaks_in(response.content, f"/api/voices/{voice_id}", values)
    assert not leaks, "\n".join(leaks)


async def test_no_raw_value_in_the_mcp_tools(scanned: dict[str, Any]) -> None:
    from mcp.shared.memory import create_connected_server_and_client_session

    from mcp_servers.tickets import create_server

    values = raw_values()
    leaks: list[str] = []
    async with create_connected_server_and_client_session(create_server(scanned["settings"])) as client:
        result = await client.call_tool("search_voices", {"week": WEEK, "limit": 200})
        assert not result.isError
        page = result.structuredContent
        assert page is not None and page["items"]
        leaks += leaks_in(json.dumps(page, ensure_ascii=False), "search_voices", values)
        for item in page["items"]:
            voice = await client.call_tool("get_voice", {"voice_id": item["id"]})
            assert not voice.isError
            content = json.dumps(voice.structuredContent, ensure_ascii=False)
            leaks += leaks_in(content + "".join(getattr(c, "text", "") for c in voice.content), "get_voice", values)
    assert not leaks, "\n".join(leaks)


@pytest.mark.parametrize("created_at", ["来电18900005555", "客户我叫慕容复"])
def test_a_reject_reason_does_not_repeat_raw_values(settings: Settings, tmp_path: Path, created_at: str) -> None:
    """A shifted column puts personal data into 受理时间; the reject reason quotes the bad value."""
    from voc.ingest import Ingestor
    from voc.storage import Store

    row: dict[str, object] = {"id": "R1", "created_at": created_at, "channel": "电话客服", "text": "验证码收不到"}
    report = Ingestor(Store(settings.resolved_database_url), settings).ingest_file(
        write_jsonl(tmp_path / "bad.jsonl", [row]))
    assert report.rejected == 1 and report.rejects_path
    rejects = Path(report.rejects_path).read_bytes()
    assert not leaks_in(rejects, "rejects", ["18900005555", "慕容复"])
    assert not leaks_in(json.dumps(report.reasons, ensure_ascii=False), "report.reasons", ["18900005555", "慕容复"])
