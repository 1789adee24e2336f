"""Reading the weekly run's outputs (voices.jsonl, clusters.json, proposals.json, run.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def latest_run_dir(runs_dir: Path, label: str, engine: str | None = "offline") -> Path | None:
    """The newest complete run of a period (with this engine, unless None), if any."""
    found = []
    for summary in runs_dir.glob("*/run.json"):
        run = json.loads(summary.read_text(encoding="utf-8"))
        complete = (summary.parent / "voices.jsonl").exists() and (summary.parent / "clusters.json").exists()
        if run["period"]["label"] == label and engine in (None, run["engine"]) and complete:
            found.append((summary.stat().st_mtime, str(summary.parent)))
    return Path(max(found)[1]) if found else None


def load_run(run_dir: Path) -> dict[str, Any]:
    def read(name: str) -> Any:
        return json.loads((run_dir / name).read_text(encoding="utf-8"))

    voices = [json.loads(line) for line in (run_dir / "voices.jsonl").read_text(encoding="utf-8").splitlines() if line]
    return {"run": read("run.json"), "clusters": read("clusters.json"), "proposals": read("proposals.json"),
            "voices": voices}
