"""The one settings object: every knob of the product, read from VOC_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOC_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path(".voc"), description="Everything the product writes lives here.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in data_dir.")
    chroma_url: str | None = Field(default=None, description="http://host:port of a Chroma server.")
    knowledge_dir: Path = Field(default=REPO_ROOT / "knowledge")
    service_matrix: Path | None = Field(default=None, description="A bank's own matrix (YAML or CSV).")
    taxonomy: Path | None = Field(default=None, description="A bank's own taxonomy YAML.")
    holidays: Path | None = Field(default=None, description="Holiday calendar YAML for SLA working days.")
    column_map: Path | None = Field(default=None, description="YAML mapping bank export headers to fields.")

    allow_unmasked_pii: bool = Field(default=False, description="Store text unmasked (never in production).")
    pii_salt: str | None = Field(
        default=None, description="Key of the customer-id pseudonym hash; unset: a random key generated once "
        "per installation in DATA_DIR/pii.key (see pseudonym_key()).")
    duplicate_window_hours: int = Field(default=72, ge=0)
    near_duplicate_similarity: float = Field(default=0.85, gt=0, le=1)
    ingest_batch_size: int = Field(default=2000, ge=1)

    mcp_host: str = "127.0.0.1"
    mcp_port: int = 8765
    mcp_token: str | None = Field(default=None, description="Bearer token required by the HTTP transport.")
    max_page_size: int = Field(default=200, ge=1)

    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_token: str | None = Field(default=None, description="Bearer token of the app's API (required off loopback).")
    api_max_body_bytes: int = Field(default=65536, ge=1024, description="Larger request bodies are refused (413).")
    api_allowed_hosts: list[str] = Field(
        default=["127.0.0.1", "localhost", "::1"],
        description='Host names the app answers (DNS rebinding), JSON list, e.g. \'["voc.bank.local"]\'; api_host is '
        'always added; "*" allows any.')
    embed_batch_size: int = Field(default=64, ge=1)

    llm_base_url: str | None = Field(default=None, description="OpenAI-compatible endpoint, e.g. …/v1")
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_response_format: Literal["json_object", "json_schema"] = Field(
        default="json_object", description="json_schema where the server enforces it (vLLM, Ollama).")
    llm_timeout_seconds: float = Field(default=60.0, gt=0)
    llm_max_retries: int = Field(default=3, ge=0)
    llm_backoff_seconds: float = Field(default=1.0, ge=0)
    llm_batch_size: int = Field(default=20, ge=1, description="Voices per call for per-voice agents.")
    llm_label_batch_size: int = Field(default=20, ge=1, description="Clusters named per call (分析).")
    llm_proposal_batch_size: int = Field(default=5, ge=1, description="Proposals rewritten per call (应用).")
    llm_temperature: float = Field(default=0.0, ge=0, le=2)

    review_threshold: float = Field(
        default=0.6, ge=0, le=1,
        description="Owner confidence below: needs review; with --engine llm only these voices go to the model (归因).")
    llm_tag_threshold: float = Field(
        default=0.6, ge=0, le=1,
        description="--engine llm: only voices whose offline tag confidence is below this go to the model for 溯源 "
        "(0: none, 1: all but the certain); the others keep the offline tag and sentiment.")

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.resolved_data_dir / 'voc.db'}"

    @property
    def chroma_dir(self) -> Path:
        return self.resolved_data_dir / "chroma"

    @property
    def service_matrix_path(self) -> Path:
        return self.service_matrix or self.knowledge_dir / "service_matrix.yaml"

    @property
    def taxonomy_path(self) -> Path:
        return self.taxonomy or self.knowledge_dir / "taxonomy.yaml"

    @property
    def holidays_path(self) -> Path:
        return self.holidays or self.knowledge_dir / "holidays.yaml"

    @property
    def embedding_cache_path(self) -> Path:
        return self.resolved_data_dir / "embeddings.sqlite"

    @property
    def rejects_dir(self) -> Path:
        return self.resolved_data_dir / "rejects"

    @property
    def runs_dir(self) -> Path:
        return self.resolved_data_dir / "runs"

    @property
    def pii_key_path(self) -> Path:
        return self.resolved_data_dir / "pii.key"

    def pseudonym_key(self) -> str:
        """The key of customer-id pseudonyms: VOC_PII_SALT when set, otherwise this installation's
        random key, generated on first use into DATA_DIR/pii.key (mode 0600) and reused after."""
        if self.pii_salt:
            return self.pii_salt
        from voc.pseudonyms import load_or_create_key

        return load_or_create_key(self.pii_key_path)

    def ensure_dirs(self) -> None:
        # Owner-only: the store holds masked but still confidential customer voices.
        for path in (self.resolved_data_dir, self.rejects_dir, self.runs_dir):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
