"""Runtime settings from environment variables (prefix CLINREASON_)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "clinreason"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLINREASON_", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir, description="Index, caches and stores live here.")
    chroma_url: str | None = Field(
        default=None,
        description="http(s)://host:port of a Chroma server; unset = embedded persistent Chroma under data_dir.",
    )
    chroma_collection: str = "clinreason-kb"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"


@cache
def get_settings() -> Settings:
    return Settings()
