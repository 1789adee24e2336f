"""`voc learn history.csv`: the mapping is checked, every row is accounted for, text is masked before it
is stored, a re-import adds nothing, and the learned layer trains on the history."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests.conftest import copy_of_kb
from voc.cli import app
from voc.config import Settings, get_settings
from voc.demo.history import FILING, HISTORY_HEADERS, history_rows, mapping_path
from voc.ingest_rows import ColumnMap
from voc.knowledge_base import KnowledgeBase
from voc.learning.history import HISTORY_SOURCE, history_examples, import_history
from voc.learning.history_mapping import EXAMPLE_MAPPING, HistoryError, HistoryMapping
from voc.learning.layer import MODELS_DIR, current_summary
from voc.storage import LabelledHistoryRow, Store

PHONE, ID_NUMBER = "13912345678", "11010519491231002X"
OTP_TAG = "系统设备>登录认证>验证码收不到"


@pytest.fixture
def kb(settings: Settings) -> KnowledgeBase:
    return KnowledgeBase(settings)  # taxonomy and matrix only: nothing is embedded


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("VOC_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def mapping_file(folder: Path, text: str) -> Path:
    path = folder / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def one_line(output: str) -> str:
    return "".join(output.split())


# ---------------------------------------------------------------- the mapping

def test_the_example_mapping_is_valid(kb: KnowledgeBase) -> None:
    mapping = HistoryMapping.load(EXAMPLE_MAPPING, kb.taxonomy, kb.matrix)
    assert [c.kind for c in mapping.columns] == ["tag", "owner", "sentiment"]
    labels = mapping.labels({"工单分类": "手机银行 登录 验证码", "责任部门": "科技部", "满意度": "不满意"})
    assert (labels.tag, labels.owner, labels.sentiment) == (OTP_TAG, "信息科技部", "负面")
    consult = mapping.labels({"工单分类": "业务咨询", "责任部门": "", "满意度": "中性"})
    assert (consult.tag, consult.owner, consult.sentiment) == (None, None, "中性")


@pytest.mark.parametrize(("text", "named"), [
    ("category_column: 分类\ncategories:\n  登录问题: 系统设备>登录>验证码\n", "系统设备>登录>验证码"),
    ("department_column: 部门\ndepartments:\n  科技部: 科技部门\n", "科技部门"),
    ("sentiment_column: 满意度\nsentiments:\n  好评: 很好\n", "很好"),
    ("category_column: 分类\nfoo: 1\n", "foo"),
    ("categories:\n  登录问题: " + OTP_TAG + "\n", "category_column"),
    ("category_column: 分类\n", "categories"),
    ("{}\n", "category_column"),
    ("category_column: 分类\ncategories:\n  a: [1]\n", "categories.a"),
    ("- 不是映射\n", "键值"),
])
def test_mapping_errors_name_the_bad_value(kb: KnowledgeBase, tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(HistoryError, match=re.escape(named)):
        HistoryMapping.load(mapping_file(tmp_path, text), kb.taxonomy, kb.matrix)


def test_a_missing_mapping_file_says_where_the_example_is(kb: KnowledgeBase, tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match=r"history_mapping\.example\.yaml"):
        HistoryMapping.load(tmp_path / "nope.yaml", kb.taxonomy, kb.matrix)


# ---------------------------------------------------------------- reading and storing

def test_every_row_is_accounted_for_masked_and_imported_once(kb: KnowledgeBase, tmp_path: Path) -> None:
    mapping = HistoryMapping.load(EXAMPLE_MAPPING, kb.taxonomy, kb.matrix)
    header = ["工单编号", "受理时间", "受理渠道", "业务类型", "客户诉求", "工单分类", "责任部门", "满意度"]
    rows = [
        ["1", "2026-10-05 09:00", "95588热线", "手机银行", f"验证码收不到，我的手机{PHONE}，身份证{ID_NUMBER}",
         "手机银行-登录-验证码", "科技部", "不满意"],
        ["2", "不是日期", "柜台", "APP", "人脸识别一直失败", "手机银行-登录-人脸识别", "网金部", ""],
        ["3", "2026-10-05 10:00", "电话", "信用卡", "", "信用卡-收费-年费", "卡中心", "不满意"],
        ["4", "2026-10-05 11:00", "电话", "信用卡", "年费怎么又扣了", "待分类", "卡中心", "不满意"],
        ["5", "2026-10-05 12:00", "电话", "信用卡", "积分怎么清零了", "待分类", "卡中心", ""],
        ["6", "2026-10-05 13:00", "电话", "信用卡", "还有别的问题", "新分类", "卡中心", ""],
        ["7", "2026-10-05 14:00", "电话", "借记卡", "想问下营业时间", "业务咨询", "", ""],
        ["8", "2026-10-05 15:00", "电话", "借记卡", "网点排队太久", "网点-服务-排队", "总行", ""],
        ["9", "2026-10-05 16:00", "电话", "借记卡", "多了一格", "网点-服务-排队", "渠道部", "", "多余"],
        ["10", "2026-10-05 09:00", "95588热线", "手机银行", f"验证码收不到，我的手机{PHONE}，身份证{ID_NUMBER}",
         "手机银行-登录-验证码", "科技部", "不满意"],  # the same ticket exported twice
    ]
    path = write_csv(tmp_path / f"张三_{PHONE}.csv", header, rows)
    store = Store(kb.settings.resolved_database_url)
    report = import_history(store, path, mapping, ColumnMap.load())
    assert report.rows == 10 and report.balanced
    assert (report.new, report.known, report.learned) == (2, 1, 3)
    assert report.skipped == {"缺少文本": 1, "工单分类的取值未在映射文件中": 3, "没有标签": 1,
                              "责任部门的取值未在映射文件中": 1, "该行有 9 个单元格，但表头只有 8 列": 1}
    assert report.skipped_rows["工单分类的取值未在映射文件中"] == [4, 5, 6]
    assert report.top_unmapped() == {"工单分类": [("待分类", 2), ("新分类", 1)], "责任部门": [("总行", 1)]}
    assert report.labels == {"owner": 3, "tag": 3, "sentiment": 2}

    with store.session() as session:
        stored = session.scalars(select(LabelledHistoryRow).order_by(LabelledHistoryRow.text)).all()
    assert len(stored) == 2
    dump = json.dumps([[r.text, r.source_file] for r in stored], ensure_ascii=False)
    assert PHONE not in dump and ID_NUMBER not in dump
    assert "[手机号]" in dump and "[身份证号]" in dump
    otp = next(r for r in stored if r.tag == OTP_TAG)
    assert (otp.owner, otp.sentiment, otp.channel, otp.business) == ("信息科技部", "负面", "电话客服", "手机银行")
    face = next(r for r in stored if r.tag != OTP_TAG)
    assert face.created_at is None and face.sentiment is None  # a broken date and a blank rating stay unknown

    again = import_history(store, path, mapping, ColumnMap.load())
    assert (again.new, again.known) == (0, 3)
    with store.session() as session:
        assert len(session.scalars(select(LabelledHistoryRow.id)).all()) == 2

    examples = history_examples(store, kb.taxonomy, kb.matrix)
    assert len(examples) == 2 and {e.source for e in examples} == {HISTORY_SOURCE}
    assert all(PHONE not in e.text for e in examples)


def test_jsonl_history_and_a_missing_label_column(kb: KnowledgeBase, tmp_path: Path) -> None:
    mapping = HistoryMapping.load(EXAMPLE_MAPPING, kb.taxonomy, kb.matrix)
    path = tmp_path / "history.jsonl"
    path.write_text(json.dumps({"内容": "转账扣款了对方没收到", "工单分类": "转账汇款-交易-未到账"},
                               ensure_ascii=False) + "\n", encoding="utf-8")
    report = import_history(Store(kb.settings.resolved_database_url), path, mapping, ColumnMap.load())
    assert (report.rows, report.new) == (1, 1)
    assert any("责任部门" in w for w in report.warnings) and any("满意度" in w for w in report.warnings)


def test_an_unreadable_history_is_one_error(kb: KnowledgeBase, tmp_path: Path) -> None:
    mapping = HistoryMapping.load(EXAMPLE_MAPPING, kb.taxonomy, kb.matrix)
    document = tmp_path / "a.doc"
    document.write_text("不是表格", encoding="utf-8")
    with pytest.raises(HistoryError, match="不支持的文件类型"):
        import_history(Store(kb.settings.resolved_database_url), document, mapping, ColumnMap.load())


# ---------------------------------------------------------------- the demo history

def test_the_demo_history_maps_onto_the_taxonomy_and_matrix(kb: KnowledgeBase) -> None:
    mapping = HistoryMapping.load(EXAMPLE_MAPPING, kb.taxonomy, kb.matrix)
    rows = list(history_rows(weeks=1, per_week=400, seed=3, end_week="2026-W40"))
    assert len(rows) == 400 and set(rows[0]) == set(HISTORY_HEADERS)
    unmapped = [r for r in rows if r["工单分类"] == FILING.unfiled]
    assert 0 < len(unmapped) < 40
    for row in rows:
        if row["工单分类"] != FILING.unfiled:
            labels = mapping.labels(row)  # raises for a value the mapping does not know
            assert labels.owner is not None or not row["责任部门"]
    assert all(r["受理时间"] < "2026-10-06" for r in rows)


def test_demo_data_writes_a_history_and_its_mapping(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "h" / "history.csv"
    result = runner.invoke(app, ["demo-data", "--weeks", "1", "--per-week", "50", "--end-week", "2026-W47",
                                 "--history", str(target), "--history-weeks", "2", "--history-per-week", "30"])
    assert result.exit_code == 0, result.output
    assert mapping_path(target).read_text(encoding="utf-8") == EXAMPLE_MAPPING.read_text(encoding="utf-8")
    with target.open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 60
    assert max(r["受理时间"] for r in rows) < "2026-11-16"  # before the demo voices' week 2026-W47


def test_eval_imports_the_history_into_its_store(kb: KnowledgeBase, tmp_path: Path) -> None:
    from eval.harness import HistorySource, _learned_line, learn_history

    history = write_csv(tmp_path / f"李四{PHONE}.csv", ["客户诉求", "工单分类", "责任部门"],
                        [["验证码收不到", "手机银行-登录-验证码", "科技部"], ["", "表扬", "客服中心"]])
    source = HistorySource(history, HistoryMapping.load(EXAMPLE_MAPPING, kb.taxonomy, kb.matrix))
    learned = learn_history(kb.settings, source)
    assert (learned["rows"], learned["learned"], learned["skipped"]) == (2, 1, {"缺少文本": 1})
    assert PHONE not in learned["file"]
    assert len(history_examples(kb.store, kb.taxonomy, kb.matrix)) == 1
    line = _learned_line({"history": learned, "learned_sources": {"history": 1, "taxonomy": 514}})
    assert "history 1, taxonomy 514" in line and "1 of 2 rows" in line
    assert "no labelled history" in _learned_line({"history": None, "learned_sources": {}})


# ---------------------------------------------------------------- the command

def test_learn_errors_are_one_line(runner: CliRunner, tmp_path: Path) -> None:
    missing = runner.invoke(app, ["learn", str(tmp_path / "nope.csv"), "--mapping", str(EXAMPLE_MAPPING)])
    assert missing.exit_code == 2 and "找不到历史工单文件" in one_line(missing.output)
    assert "Traceback" not in missing.output
    history = write_csv(tmp_path / "h.csv", ["客户诉求", "工单分类"], [["验证码收不到", "手机银行-登录-验证码"]])
    no_mapping = runner.invoke(app, ["learn", str(history)])
    assert no_mapping.exit_code == 2 and "--mapping" in no_mapping.output
    bad = mapping_file(tmp_path, "department_column: 部门\ndepartments:\n  科技部: 科技部门\n")
    bad_mapping = runner.invoke(app, ["learn", str(history), "--mapping", str(bad)])
    assert bad_mapping.exit_code == 2 and "科技部门" in one_line(bad_mapping.output)
    no_model = runner.invoke(app, ["learn", "--show"])
    assert no_model.exit_code == 2 and "voclearn" in one_line(no_model.output)
    no_history_mapping = runner.invoke(app, ["eval", "--dataset", str(history), "--history", str(history)])
    assert no_history_mapping.exit_code == 2 and "--mapping" in no_history_mapping.output


def test_learn_imports_the_history_and_retrains(loaded_kb: KnowledgeBase, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    settings = copy_of_kb(loaded_kb, tmp_path / "data")
    monkeypatch.setenv("VOC_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    history = tmp_path / "history.csv"
    with history.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=HISTORY_HEADERS)
        writer.writeheader()
        writer.writerows(history_rows(weeks=1, per_week=80, seed=11, end_week="2026-W40"))
    before = loaded_kb.learned.version
    try:
        result = CliRunner().invoke(app, ["learn", str(history), "--mapping", str(EXAMPLE_MAPPING)])
        shown = CliRunner().invoke(app, ["learn", "--show"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    printed = one_line(result.output)
    for expected in ("历史工单导入结果", "跳过原因", "学到的标签", "history", "交叉验证准确率", "→", "责任部门"):
        assert expected in printed, expected
    summary = current_summary(settings.resolved_data_dir / MODELS_DIR)
    assert summary is not None and summary["version"] != before
    assert isinstance(summary["sources"], dict) and summary["sources"][HISTORY_SOURCE] > 0
    assert HISTORY_SOURCE in {e.source for e in KnowledgeBase(settings).learning_examples()}
    assert shown.exit_code == 0 and str(summary["version"]) in one_line(shown.output)
