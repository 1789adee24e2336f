"""Shared fixtures: every test works in its own data directory; nothing touches .voc/ or the network."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.fake_openai import fake_llm_fixture  # noqa: F401  (registers the `fake_llm` fixture)
from voc.config import Settings
from voc.knowledge_base import KnowledgeBase
from voc.learning.layer import MODELS_DIR
from voc.storage import Store

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: object) -> None:
    # Real model endpoints and any other remote host are blocked in tests by default.
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("/"):
        raise RuntimeError(f"tests may not open network connections (tried {address!r})")
    _real_connect(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def no_remote_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def store(settings: Settings) -> Store:
    return Store(settings.resolved_database_url)


@pytest.fixture(scope="session")
def loaded_kb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KnowledgeBase]:
    """The real knowledge base embedded once into a session-wide Chroma directory."""
    data_dir = tmp_path_factory.mktemp("kb")
    kb = KnowledgeBase(Settings(data_dir=data_dir))
    kb.load()  # embeds the knowledge base and trains the learned layer once for the session
    yield kb


def copy_of_kb(loaded_kb: KnowledgeBase, folder: Path) -> Settings:
    """A data directory of its own holding a copy of the session's embedded knowledge base: for
    tests that write (cases, runs, proposals) without leaking into other tests."""
    import shutil

    shutil.copytree(loaded_kb.settings.chroma_dir, folder / "chroma")
    if loaded_kb.settings.embedding_cache_path.exists():
        shutil.copy(loaded_kb.settings.embedding_cache_path, folder / "embeddings.sqlite")
    models = loaded_kb.settings.resolved_data_dir / MODELS_DIR
    if models.exists():
        shutil.copytree(models, folder / MODELS_DIR)
    return Settings(data_dir=folder)


def kb_with_voices(loaded_kb: KnowledgeBase, folder: Path, rows: list[dict[str, object]]) -> Settings:
    """`copy_of_kb` with these voices ingested into its own store."""
    from voc.ingest import Ingestor

    settings = copy_of_kb(loaded_kb, folder)
    Ingestor(Store(settings.resolved_database_url), settings).ingest_file(write_jsonl(folder / "in.jsonl", rows))
    return settings


def finish_run(client: Any, week: str, timeout: float = 600) -> dict[str, Any]:
    """Start a run through the app's API (TestClient or httpx.Client) and wait until it is done."""
    started = client.post("/api/runs", json={"week": week})
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    deadline = time.monotonic() + timeout
    while (job := client.get(f"/api/runs/{run_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    assert job["status"] == "done", job
    return dict(job)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until a server subprocess accepts connections; fail with its stderr if it dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if process.poll() is not None:
                error = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"server exited: {error}") from None
            time.sleep(0.2)
    raise TimeoutError(f"nothing listening on port {port} after {timeout} s")


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def postgres_url() -> str:
    url = os.environ.get("VOC_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("VOC_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped (set it to run them)")
    return url


@pytest.fixture
def pg_settings(postgres_url: str, tmp_path: Path) -> Iterator[Settings]:
    schema = f"voc_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in postgres_url else "?"
    url = f"{postgres_url}{separator}options=-csearch_path%3D{schema}"
    yield Settings(data_dir=tmp_path / "data", database_url=url)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
