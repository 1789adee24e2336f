"""The `voc` command."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.table import Table

from voc.cli_common import (
    DEBUG,
    ServerName,
    Transport,
    VocGroup,
    console,
    ensure_knowledge,
    execute_run,
    fail,
    load_knowledge,
    parse_day,
    progress_bars,
)
from voc.config import get_settings
from voc.contracts import Engine, RunEngine

if TYPE_CHECKING:
    from voc.kb_models import Taxonomy

_T = TypeVar("_T")

app = typer.Typer(help="客户声音 VOC: ingest voices, load the knowledge base, serve MCP tools.", cls=VocGroup,
                  no_args_is_help=True, pretty_exceptions_show_locals=False)


def _show_version(value: bool) -> None:
    if value:
        from voc import __version__

        typer.echo(f"voc {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of an error.")] = False,
) -> None:
    """客户声音 VOC: ingest voices, load the knowledge base, run the weekly analysis, report, serve."""
    DEBUG["on"] = debug


kb_app = typer.Typer(help="The knowledge base: service matrix, taxonomy, cases, documents.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")
@app.command("demo-data")
def demo_data(
    weeks: Annotated[int, typer.Option(min=1, max=104, help="How many ISO weeks.")] = 8,
    per_week: Annotated[int, typer.Option(min=10, help="Voices per week.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data.")] = 7,
    end_week: Annotated[str | None, typer.Option(help="Last week, e.g. 2026-W47 (default: last complete).")] = None,
    out: Annotated[Path | None, typer.Option(help="JSONL file to write (default: DATA_DIR/demo/voices.jsonl).")] = None,
    history: Annotated[Path | None, typer.Option(help="Also write the demo bank's labelled history of the weeks "
                                                 "before (CSV) and its mapping beside it, for `voc learn`.")] = None,
    history_weeks: Annotated[int, typer.Option(min=1, max=104, help="Weeks of history.")] = 4,
    history_per_week: Annotated[int, typer.Option(min=10, help="History tickets per week.")] = 250,
) -> None:
    """Write a realistic demo VOC stream (demo and benchmark data only, never evaluation gold).

    The generator's answers (scenario, kind, style, …) go to answers/X.jsonl beside X.jsonl, for
    benchmarks and tests: they are not part of the voices and must not be ingested."""
    from voc import demo
    from voc.periods import parse_week

    settings = get_settings()
    target = out or settings.resolved_data_dir / "demo" / "voices.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        last_week = parse_week(end_week or demo.last_complete_iso_week())
    except ValueError as exc:
        raise fail(str(exc)) from exc
    with progress_bars() as progress:
        task = progress.add_task("generating demo voices", total=weeks * per_week)
        voices = demo.generate_with_answers(weeks=weeks, per_week=per_week, seed=seed, end_week=last_week.label)
        count = demo.write_with_answers(_advancing(voices, progress, task), target)
    console.print(f"wrote {count} voices to {target} and the generator's answers to {demo.answers_path(target)}")
    if history is not None:
        from voc.demo.history import write_history

        before = last_week.shifted(-weeks).label  # the history ends the week before the demo voices begin
        rows, mapping = write_history(history, history_weeks, history_per_week, seed + 1, before)
        console.print(f"wrote {rows} labelled history tickets (to {before}) to {history} and their mapping to "
                      f"{mapping}: voc learn {history} --mapping {mapping}")
    typer.echo(str(target))


def _advancing(items: Iterator[_T], progress: Progress, task: TaskID) -> Iterator[_T]:
    for item in items:
        progress.advance(task)
        yield item


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="CSV, JSONL or XLSX files.")],
    column_map: Annotated[Path | None, typer.Option(help="YAML mapping your export's headers to fields.")] = None,
) -> None:
    """Store voices: masked, duplicates linked, every bad row written to a rejects file with its reason."""
    from voc.ingest import ColumnMap, IngestError, Ingestor
    from voc.storage import Store

    settings = get_settings()
    try:
        settings.ensure_dirs()
        ingestor = Ingestor(Store(settings.resolved_database_url), settings,
                            ColumnMap.load(column_map or settings.column_map))
    except IngestError as exc:
        raise fail(str(exc)) from exc
    reports, failed = [], []
    with progress_bars() as progress:
        for path in paths:
            task = progress.add_task(f"ingesting {path.name}", total=None)

            def advance(n: int, task: TaskID = task) -> None:
                progress.advance(task, n)
            try:
                reports.append(ingestor.ingest_file(path, advance))
            except IngestError as exc:  # this file only: the next one is still ingested
                failed.append(str(exc))
                continue
            progress.update(task, total=reports[-1].rows, completed=reports[-1].rows)
    _print_ingest_reports(reports)
    for message in failed:
        console.print(f"[red]未导入：[/red]{message}")
    if failed:
        raise typer.Exit(code=2)


def _print_ingest_reports(reports: list[Any]) -> None:
    table = Table("文件", "行数", "入库", "重复", "其中关联", "其中已存", "拒收", "拒收明细",
                  title="导入结果")
    for r in reports:
        table.add_row(Path(r.path).name, str(r.rows), str(r.stored), str(r.duplicate), str(r.linked),
                      str(r.already_stored), str(r.rejected), r.rejects_path or "-")
    Console().print(table)
    for r in reports:
        notes = [f"{k} {v} 行" for k, v in r.warnings.items()] + [f"拒收原因：{k} {v} 行" for k, v in r.reasons.items()]
        if r.error:
            notes.insert(0, f"[red]{r.error}[/red]")
        if notes:
            console.print(f"{Path(r.path).name}：" + "；".join(notes))


@kb_app.command("load")
def kb_load() -> None:
    """Check the knowledge files and mirror them into Chroma (only new or changed items are embedded)."""
    reports = load_knowledge(get_settings())
    table = Table("知识集合", "新增", "更新", "删除", "未变", title="知识库载入结果")
    for r in reports:
        table.add_row(r.collection, str(r.added), str(r.updated), str(r.deleted), str(r.unchanged))
    Console().print(table)


@kb_app.command("check")
def kb_check() -> None:
    """Validate the knowledge files against their schemas and each other."""
    from voc.knowledge import KnowledgeError
    from voc.knowledge_base import KnowledgeBase

    kb = KnowledgeBase(get_settings())
    try:
        kb.check()
    except (KnowledgeError, ValueError) as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"service matrix {kb.matrix.version}: {len(kb.matrix.departments)} departments, "
               f"{len(kb.matrix.entries)} entries; taxonomy {kb.taxonomy.version}: {len(kb.taxonomy.tags)} tags; "
               f"{len(kb.cases())} cases; {len(kb.docs)} documents")


@kb_app.command("tag-rename")
def tag_rename(old: str, new: str) -> None:
    """Rename a taxonomy tag (the old path stays as an alias; the version and changelog move on)."""
    from voc.knowledge import rename_tag

    _edit_taxonomy(lambda t: rename_tag(t, old, new))


@kb_app.command("tag-merge")
def tag_merge(sources: list[str], into: Annotated[str, typer.Option(help="The tag that remains.")]) -> None:
    """Merge tags into one (their paths become aliases of the remaining tag)."""
    from voc.knowledge import merge_tags

    _edit_taxonomy(lambda t: merge_tags(t, sources, into))


@kb_app.command("tag-add")
def tag_add(definition: Annotated[Path, typer.Argument(help="YAML file with one tag definition.")]) -> None:
    """Add a taxonomy tag from a YAML file (path, dimension, definition, use_when, dont_use_when, examples)."""
    import yaml

    from voc.kb_models import TagDefinition
    from voc.knowledge import add_tag

    tag = TagDefinition.model_validate(yaml.safe_load(definition.read_text(encoding="utf-8")))
    _edit_taxonomy(lambda t: add_tag(t, tag))


def _edit_taxonomy(change: Callable[[Taxonomy], Taxonomy]) -> None:
    from voc.knowledge import KnowledgeError, load_taxonomy, save_taxonomy

    path = get_settings().taxonomy_path
    try:
        changed = change(load_taxonomy(path))
    except KnowledgeError as exc:
        raise fail(str(exc)) from exc
    save_taxonomy(changed, path)
    typer.echo(f"taxonomy {changed.version}: {changed.changelog[-1].changes[0]}")


@app.command()
def mcp(
    name: Annotated[ServerName, typer.Argument(help="Which server.")],
    transport: Annotated[Transport, typer.Option(help="stdio for a local assistant, http for the network.")]
    = Transport.STDIO,
    host: Annotated[str | None, typer.Option(help="HTTP bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port.")] = None,
    token: Annotated[str | None, typer.Option(help="Bearer token for HTTP (default VOC_MCP_TOKEN).")] = None,
) -> None:
    """Serve one MCP server over stdio or streamable HTTP (endpoint /mcp)."""
    from mcp_servers import SERVERS
    from mcp_servers.common import run

    settings = get_settings()
    bind = host or settings.mcp_host
    secret = token or settings.mcp_token
    if transport == Transport.HTTP and bind not in ("127.0.0.1", "localhost", "::1") and not secret:
        raise fail("绑定到回环地址以外需要令牌：--token 或 VOC_MCP_TOKEN")
    from mcp_servers.common import data_missing

    if missing := data_missing(settings):  # never create an empty store where the client happens to run
        raise fail(missing)
    if name in (ServerName.KNOWLEDGE, ServerName.CASES):
        ensure_knowledge(settings)
    run(SERVERS[name.value](settings), transport.value, bind, port or settings.mcp_port, secret)


@app.command()
def summary(
    week: Annotated[str | None, typer.Option(help="ISO week, default the latest week with voices.")] = None,
) -> None:
    """Headline figures of a week against the week before: volume by funnel tier, channel and business."""
    from voc.summary import print_summary

    print_summary(get_settings(), week, Console())


@app.command()
def run(
    week: Annotated[str | None, typer.Option(help="ISO week, e.g. 2026-W47.")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD) of a custom period.")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Last day (YYYY-MM-DD) of a custom period.")] = None,
    engine: Annotated[RunEngine, typer.Option(help="offline (default) or an OpenAI-compatible llm.")] = Engine.OFFLINE,
    out: Annotated[Path | None, typer.Option(help="Output directory (default DATA_DIR/runs/RUN_ID).")] = None,
    resume: Annotated[str | None, typer.Option(help="Resume the run with this id from its last checkpoint.")] = None,
) -> None:
    """The weekly run: 归因 → 溯源 → 分析 → 应用 through the MCP tools; writes voices.jsonl, clusters.json,
    proposals.json and run.json. The previous period is the same length just before."""

    from voc.periods import period_of

    settings = get_settings()
    settings.ensure_dirs()
    try:
        period = None if resume else period_of(week, parse_day(date_from, "--from"), parse_day(date_to, "--to"))
    except ValueError as exc:
        raise fail(str(exc)) from exc
    target, summary = execute_run(settings, period, Engine(engine).value, out, resume)
    counts = summary.counts
    console.print(f"运行 {summary.run_id} 完成：客户声音 {counts.voices} 条，负面 {counts.negative} 条，"
                  f"共性问题 {counts.clusters} 个（未归入问题的负面声音 {summary.outlier_rate:.1%}），"
                  f"整改建议 {counts.proposals} 条 → {target}")
    _print_proposals(target)
    typer.echo(str(target))


def _print_proposals(run_dir: Path) -> None:
    from voc.contracts import read_proposals

    proposals = read_proposals(run_dir)
    table = Table("编号", "优先级", "责任部门", "维度", "问题", "到期日", title=f"整改建议（{len(proposals)}条）")
    for p in proposals:
        table.add_row(*(escape(str(v)) for v in (p.proposal_id, p.priority, p.owner_department, p.dimension,
                                                  p.problem[:48], p.due_date)))
    Console().print(table)


@app.command("eval")
def evaluate(
    dataset: Annotated[str, typer.Option(help="Bundled sets (gold_v1,gold_v2 — comma-separated, shown side by "
                                              "side) or a JSONL path with labels.")] = "gold_v1,gold_v2",
    engine: Annotated[RunEngine, typer.Option(help="offline (default) or an OpenAI-compatible llm.")] = Engine.OFFLINE,
    out: Annotated[Path | None, typer.Option(help="Where scorecard.json/.md go (default DATA_DIR/eval/…).")] = None,
    gate: Annotated[bool, typer.Option(help="Exit 1 when a threshold of eval/thresholds.yaml is missed.")] = True,
    with_review: Annotated[bool, typer.Option(help="Also measure accuracy with an analyst's corrections of the "
                                              "previous week's review queue (two more runs).")] = False,
    outside: Annotated[bool, typer.Option(help="Also score sentiment on the held-out sample of public review "
                                          "corpora (eval/datasets/outside_sentiment).")] = True,
    history: Annotated[Path | None, typer.Option(help="A labelled history imported into each dataset's store "
                                                 "before the run (voc learn), to measure its lift.")] = None,
    mapping: Annotated[Path | None, typer.Option(help="The history's mapping file (with --history).")] = None,
) -> None:
    """Measure every agent against gold labels beside the baselines; writes scorecard.json and scorecard.md
    per dataset, and a side-by-side scorecard.md when several are given."""
    import asyncio

    from agents.runner import RunError
    from eval.datasets import load_dataset
    from eval.harness import evaluate as run_evaluation
    from eval.harness import score_outside, write_side_by_side

    settings = get_settings()
    learned = _history_source(settings, history, mapping)
    try:
        datasets = [load_dataset(name.strip()) for name in dataset.split(",") if name.strip()]
    except FileNotFoundError as exc:
        raise fail(str(exc)) from exc
    engine_name = Engine(engine).value
    root = out or settings.resolved_data_dir / "eval"
    cards = []
    for data in datasets:
        name = f"{data.name}-{engine_name}" + ("-history" if learned else "")
        target = root / name if out is None or len(datasets) > 1 else root
        with console.status(f"evaluating {data.name} with the {engine_name} engine"):
            try:
                cards.append(asyncio.run(run_evaluation(data, engine_name, target, settings, review=with_review,
                                                        history=learned)))
            except (RunError, ValueError) as exc:
                raise fail(str(exc)) from exc
        if len(datasets) == 1:
            typer.echo((target / "scorecard.md").read_text(encoding="utf-8"))
    if len(datasets) > 1:
        typer.echo(write_side_by_side(cards, root))
    if outside and cards:
        typer.echo(score_outside(settings, cards[-1]["dataset"], root))
    if gate and not all(card["gate"]["passed"] for card in cards):
        raise typer.Exit(code=1)


def _history_source(settings: Any, history: Path | None, mapping: Path | None) -> Any:
    """`voc eval --history FILE --mapping PATH`, checked before any dataset is run."""
    if history is None and mapping is None:
        return None
    from eval.harness import HistorySource
    from voc.knowledge_base import KnowledgeBase
    from voc.learning.history_mapping import HistoryError, HistoryMapping

    if history is None or mapping is None:
        raise fail("--history 与 --mapping 需要一起给出：历史工单文件和它的映射文件")
    if not history.is_file():
        raise fail(f"找不到历史工单文件 {history}：请检查路径（支持 CSV、XLSX、JSONL）")
    kb = KnowledgeBase(settings)
    try:
        return HistorySource(history, HistoryMapping.load(mapping, kb.taxonomy, kb.matrix))
    except HistoryError as exc:
        raise fail(str(exc)) from exc


@app.command()
def quickstart(
    weeks: Annotated[int, typer.Option(min=2)] = 8,
    per_week: Annotated[int, typer.Option(min=10)] = 2000,
    seed: int = 7,
    end_week: Annotated[str | None, typer.Option()] = None,
) -> None:
    """The main job on the embedded default: demo data → stores (SQLite, Chroma) → the MCP-backed
    weekly run of the last demo week → its headline figures and proposals → the weekly report."""
    from voc.demo import last_complete_iso_week

    settings = get_settings()
    settings.ensure_dirs()
    week = end_week or last_complete_iso_week()
    target = settings.resolved_data_dir / "demo" / "voices.jsonl"
    demo_data(weeks=weeks, per_week=per_week, seed=seed, end_week=week, out=target, history=None, history_weeks=4,
              history_per_week=250)
    ingest(paths=[target], column_map=None)
    kb_load()
    summary(week=week)
    run(week=week, date_from=None, date_to=None, engine=Engine.OFFLINE, out=None, resume=None)
    report(week=week, format="html,md,pdf", out=None, engine=Engine.OFFLINE, rerun=False)

@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080).")] = None,
) -> None:
    """The analysts' app: chat, dashboard, proposal board and review queue at http://HOST:PORT/."""
    import uvicorn

    settings = get_settings()
    bind = host or settings.api_host
    if bind not in ("127.0.0.1", "localhost", "::1") and not settings.api_token:
        raise fail("绑定到回环地址以外需要令牌：请设置 VOC_API_TOKEN")
    from voc.api.application import create_app

    ensure_knowledge(settings)
    shown = f"[{bind}]" if ":" in bind else bind
    console.print(f"VOC 客户声音 已启动：http://{shown}:{port or settings.api_port}/（接口文档 /docs；Ctrl+C 停止）")
    # The bound host name is one the app answers (its Host check guards against DNS rebinding).
    app_for_host = create_app(settings.model_copy(update={"api_host": bind}))
    uvicorn.run(app_for_host, host=bind, port=port or settings.api_port, log_level="warning")


from voc.cli_learn import learn  # noqa: E402  (after `app`: the commands register on it)
from voc.cli_loop import problems_app, proposals_app, report  # noqa: E402

app.command()(report)
app.command()(learn)
app.add_typer(proposals_app, name="proposals")
app.add_typer(problems_app, name="problems")

if __name__ == "__main__":  # pragma: no cover
    app()
