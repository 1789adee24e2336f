import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from voc.cli import app
from voc.config import get_settings


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("VOC_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_demo_data_ingest_and_summary(runner: CliRunner, tmp_path: Path) -> None:
    generated = runner.invoke(app, ["demo-data", "--weeks", "2", "--per-week", "300", "--end-week", "2026-W47"])
    assert generated.exit_code == 0, generated.output
    path = tmp_path / "data" / "demo" / "voices.jsonl"
    rows = path.read_text(encoding="utf-8").splitlines()
    assert len(rows) >= 600
    ingested = runner.invoke(app, ["ingest", str(path)])
    assert ingested.exit_code == 0, ingested.output
    assert "入库" in ingested.output
    summary = runner.invoke(app, ["summary", "--week", "2026-W47"])
    assert summary.exit_code == 0 and "2026-W47" in summary.output
    first = json.loads(rows[0])
    assert first["id"] in {json.loads(r)["id"] for r in rows}


def test_kb_check(runner: CliRunner) -> None:
    result = runner.invoke(app, ["kb", "check"])
    assert result.exit_code == 0, result.output
    assert "12 departments" in result.output


def test_ingest_missing_file_is_a_clear_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["ingest", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2, result.output
    assert "文件不存在" in "".join(result.output.split()), result.output


def test_mcp_refuses_unknown_server_and_open_binding_without_token(runner: CliRunner) -> None:
    assert runner.invoke(app, ["mcp", "weather"]).exit_code == 2
    open_bind = runner.invoke(app, ["mcp", "tickets", "--transport", "http", "--host", "0.0.0.0"])
    assert open_bind.exit_code == 2 and "令牌" in open_bind.output


def test_run_errors_are_clear(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("VOC_LLM_BASE_URL", "VOC_LLM_MODEL"):
        monkeypatch.delenv(variable, raising=False)
    no_llm = runner.invoke(app, ["run", "--week", "2026-W47", "--engine", "llm"])
    assert no_llm.exit_code == 2, no_llm.output
    assert "VOC_LLM" in " ".join(no_llm.output.split())
    bad_week = runner.invoke(app, ["run", "--week", "2026-W60"])
    assert bad_week.exit_code == 2 and "2026-W60" in bad_week.output
    unknown = runner.invoke(app, ["run", "--resume", "nope"])
    assert unknown.exit_code == 2 and "没有可继续的运行" in "".join(unknown.output.split())


def test_version_and_choices(runner: CliRunner) -> None:
    from voc import __version__

    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.output.strip() == f"voc {__version__}"
    for args in (["run", "--week", "2026-W47", "--engine", "gpt"], ["report", "--week", "2026-W47", "--format", "docx"],
                 ["proposals", "list", "--status", "完成"], ["mcp", "tickets", "--transport", "pigeon"],
                 ["run", "--from", "2026-11-31", "--to", "2026-12-01"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "Traceback" not in result.output, (args, result.output)


def test_an_unexpected_error_is_one_line_and_debug_shows_it(runner: CliRunner,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import voc.summary

    def broken(*_args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(voc.summary, "print_summary", broken)
    quiet = runner.invoke(app, ["summary", "--week", "2026-W47"])
    assert quiet.exit_code == 2 and "未预期的错误" in quiet.output and "--debug" in quiet.output
    assert quiet.output.count("\n") <= 3
    loud = runner.invoke(app, ["--debug", "summary", "--week", "2026-W47"])
    assert isinstance(loud.exception, RuntimeError)


def test_a_first_run_loads_the_knowledge_base_and_an_empty_week_is_a_report(
        runner: CliRunner, tmp_path: Path, loaded_kb) -> None:
    """A new data directory (the knowledge base was never loaded) and a week with no voice."""
    import shutil

    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(loaded_kb.settings.embedding_cache_path, data / "embeddings.sqlite")  # vectors, not Chroma
    result = runner.invoke(app, ["run", "--week", "2026-W30"])
    assert result.exit_code == 0, result.output
    output = "".join(result.output.split())
    assert "知识库尚未载入" in output and output.index("运行编号") < output.index("客户声音0条")
    run_dir = Path(result.output.strip().splitlines()[-1])
    assert json.loads((run_dir / "clusters.json").read_text(encoding="utf-8")) == []
    assert (run_dir / "voices.jsonl").read_text(encoding="utf-8").strip() == ""
    report = runner.invoke(app, ["report", "--week", "2026-W30", "--format", "md"])
    assert report.exit_code == 0, report.output
    assert "本期无客户声音" in (data / "reports" / "2026-W30" / "report.md").read_text(encoding="utf-8")
