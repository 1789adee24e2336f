"""`voc learn`: a bank's labelled history into the learned layer, and the layer's own figures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from voc.cli_common import console, ensure_knowledge, fail
from voc.config import get_settings

if TYPE_CHECKING:
    from voc.config import Settings
    from voc.learning.history import HistoryReport

LABELS = {"owner": "责任部门", "tag": "根因标签", "sentiment": "情感"}


def learn(
    file: Annotated[Path | None, typer.Argument(help="Labelled history: CSV, XLSX or JSONL.")] = None,
    mapping: Annotated[Path | None, typer.Option(help="YAML naming the label columns and mapping their values "
                                                 "(see knowledge/history_mapping.example.yaml).")] = None,
    column_map: Annotated[Path | None, typer.Option(help="YAML mapping your export's headers to fields, "
                                                    "as for voc ingest.")] = None,
    show: Annotated[bool, typer.Option("--show", help="Print the current model's summary and exit.")] = False,
) -> None:
    """Learn from a bank's labelled history: import FILE (masked; importing it again adds nothing),
    then retrain the learned layer (owner, tag, sentiment). Without FILE, retrain from the current
    sources. Prints what was learned and the models' cross-validated accuracy, before → after."""
    from voc.learning.layer import MODELS_DIR, current_summary

    settings = get_settings()
    models = settings.resolved_data_dir / MODELS_DIR
    if show:
        summary = current_summary(models)
        if summary is None:
            raise fail("还没有训练好的模型：先运行 voc learn（或 voc kb load）")
        print_layer(summary, None)
        return
    settings.ensure_dirs()
    before = current_summary(models)
    if file is not None:
        print_history(import_file(settings, file, mapping, column_map))
    ensure_knowledge(settings)
    from voc.knowledge_base import KnowledgeBase

    with console.status("training the learned layer (owner, tag, sentiment)"):
        after = KnowledgeBase(settings).learned.summary()
    print_layer(after, before)


def import_file(settings: Settings, file: Path, mapping: Path | None, column_map: Path | None) -> HistoryReport:
    from voc.ingest_readers import IngestError
    from voc.ingest_rows import ColumnMap
    from voc.knowledge import KnowledgeError
    from voc.knowledge_base import KnowledgeBase
    from voc.learning.history import import_history
    from voc.learning.history_mapping import EXAMPLE_MAPPING, HistoryError, HistoryMapping

    if not file.is_file():
        raise fail(f"找不到历史工单文件 {file}：请检查路径（支持 CSV、XLSX、JSONL）")
    if mapping is None:
        raise fail(f"导入历史工单需要映射文件：加上 --mapping 你的映射.yaml（写法见 {EXAMPLE_MAPPING}）")
    kb = KnowledgeBase(settings)
    try:
        history_mapping = HistoryMapping.load(mapping, kb.taxonomy, kb.matrix)
        columns = ColumnMap.load(column_map or settings.column_map)
        with console.status(f"importing {file.name}"):
            return import_history(kb.store, file, history_mapping, columns, settings.ingest_batch_size)
    except (HistoryError, IngestError) as exc:
        raise fail(str(exc)) from exc
    except (KnowledgeError, ValueError) as exc:
        raise fail(f"知识库文件有误：{exc}（先运行 voc kb check）") from exc


def print_history(report: HistoryReport) -> None:
    table = Table("文件", "行数", "学习", "其中新增", "其中重复", "跳过", title="历史工单导入结果")
    table.add_row(escape(Path(report.path).name), str(report.rows), str(report.learned), str(report.new),
                  str(report.known), str(sum(report.skipped.values())))
    Console().print(table)
    lines = [f"[red]{escape(report.error)}[/red]"] if report.error else []
    lines += [f"跳过原因：{escape(reason)} {count} 行（如第 {'、'.join(map(str, report.skipped_rows[reason]))} 行）"
              for reason, count in sorted(report.skipped.items(), key=lambda item: -item[1])]
    for column, values in report.top_unmapped().items():
        shown = "、".join(f"“{escape(value)}” {count} 行" for value, count in values)
        lines.append(f"{escape(column)} 未在映射文件中的取值（最常见的，可补进映射文件后重新导入）：{shown}")
    lines.append("学到的标签：" + "、".join(f"{LABELS[k]} {v} 行" for k, v in report.labels.items()))
    lines += [f"[yellow]{escape(w)}[/yellow]" for w in report.warnings]
    for line in lines:
        Console().print(line)


def print_layer(after: dict[str, Any], before: dict[str, Any] | None) -> None:
    """Examples per source, then per label the cross-validated accuracy and labels, before → after."""
    sources = "、".join(f"{k} {v}" for k, v in (after.get("sources") or {}).items())
    Console().print(f"学习层 {after.get('version')}（训练于 {after.get('trained_at')}）；各来源示例数：{sources}")
    unchanged = before is not None and before.get("version") == after.get("version")
    table = Table("模型", "交叉验证准确率", "标签数", "示例数",
                  title="学习层（来源未变，沿用已有模型）" if unchanged else "学习层")
    for name, label in LABELS.items():
        now, then = after.get(name), (before or {}).get(name)
        accuracy = _accuracy(now)
        if before is not None and not unchanged:
            accuracy = f"{_accuracy(then)} → {accuracy}"
        table.add_row(label, accuracy, _figure(now, "labels"), _figure(now, "examples"))
    Console().print(table)
    for note in after.get("notes") or []:
        Console().print(f"说明：{escape(str(note))}")


def _accuracy(model: dict[str, Any] | None) -> str:
    return "—" if not model or model.get("cv_accuracy") is None else f"{model['cv_accuracy']:.1%}"


def _figure(model: dict[str, Any] | None, key: str) -> str:
    return "—" if not model else str(model.get(key, "—"))
