"""VOC_CHROMA_URL: the same sync and search against a Chroma server process instead of a directory."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_for_port
from voc.config import Settings
from voc.vectorstore import Item, client_for, collection, search, sync

pytestmark = pytest.mark.slow


@pytest.fixture
def chroma_url(tmp_path: Path):
    executable = shutil.which("chroma", path=str(Path(sys.executable).parent))
    if executable is None:
        pytest.skip("the chroma CLI is not installed in this environment")
    port = free_port()
    process = subprocess.Popen([executable, "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1",
                                "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_port(port, process)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


def test_sync_and_search_on_a_chroma_server(chroma_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", chroma_url=chroma_url)
    coll = collection(client_for(settings), "server_test")
    items = [Item("a", "信用卡年费被重复扣收", {"k": 1}), Item("b", "热线排队四十分钟", {"k": 2})]
    assert sync(coll, items).added == 2
    assert sync(coll, items).unchanged == 2
    assert search(coll, "电话一直打不进去排队很久", 1)[0].id == "b"
    assert not settings.chroma_dir.exists()
