"""Runtime settings from environment variables (prefix CLINREASON_)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "clinreason"


class CdsHooksIssuer(BaseModel):
    """One EHR (a JWT `iss`) allowed to call the CDS Hooks services, and where its public keys are."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    jwks_url: str | None = Field(default=None, description="The issuer's JWK Set URL (fetched and cached).")
    jwks: dict | None = Field(default=None, description="The issuer's JWK Set inline ({\"keys\": [...]}).")
    jku: list[str] = Field(default_factory=list, description="Other JWK Set URLs a token's `jku` header may name (allowlist).")
    site: str | None = Field(default=None, description="The site whose assessments this EHR's calls store (the report link's site).")
    locale_code: str | None = Field(default=None, description="The locale_code of the profile the EHR's patients are assessed under (one of a protocol's locale codes).")
    fhir_servers: list[str] = Field(default_factory=list, description="URL prefixes a request's `fhirServer` must start with (empty: any).")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLINREASON_", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(default_factory=_default_data_dir, description="Index, caches and stores live here.")
    chroma_url: str | None = Field(
        default=None,
        description="http(s)://host:port of a Chroma server; unset = embedded persistent Chroma under data_dir.",
    )
    chroma_collection: str = "clinreason-kb"

    # --- agents ---------------------------------------------------------------
    agent_backend: Literal["rules", "llm"] = Field(default="rules", description="rules = offline default; llm = OpenAI-compatible server.")
    max_rounds: int = Field(default=3, ge=1, le=10, description="Doctor/pharmacist rounds before escalating to a human.")
    # Shared LLM defaults; each agent may override model, base URL and key.
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"
    doctor_model: str | None = None
    doctor_base_url: str | None = None
    doctor_api_key: SecretStr | None = None
    pharmacist_model: str | None = None
    pharmacist_base_url: str | None = None
    pharmacist_api_key: SecretStr | None = None
    llm_timeout: float = Field(default=30.0, gt=0, description="Seconds per LLM request.")
    llm_max_retries: int = Field(default=2, ge=0, le=5, description="Retries on timeouts, 429 and 5xx before falling back.")
    llm_structured_method: Literal["json_schema", "function_calling", "json_mode"] = "json_schema"
    parallel_review: bool = Field(
        default=True, description="LLM backend: the pharmacist reviews the first allowed option while the doctor answers round 1; "
        "used when the doctor proposes that option, else the actual proposal is reviewed (the audit records which).")
    assessment_timeout: float = Field(
        default=60.0, gt=0, description="Overall seconds for the agents of one LLM-backed assessment; past it the rules backend answers (recorded).")

    # --- persistence and tracing -------------------------------------------------
    database_url: str | None = Field(
        default=None, description="postgresql://... for the checkpointer and assessment store; unset = SQLite under data_dir."
    )
    weave_project: str | None = Field(default=None, description="W&B Weave project; tracing is on only when set.")

    # --- REST API --------------------------------------------------------------------
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "CLINREASON_REDIS_URL"),
        description="redis://... for shared rate limits; unset = in-memory per process.",
    )
    rate_limit: int = Field(default=120, ge=1, description="Requests per key per rate_window seconds.")
    rate_window: int = Field(default=60, ge=1)
    max_body_bytes: int = Field(default=65536, ge=1024, description="Largest accepted request body.")
    max_header_bytes: int = Field(default=16384, ge=1024, description="Largest accepted request head (all headers); larger gets 431.")
    db_pool_size: int = Field(default=5, ge=1, le=100, description="Postgres connections per process (store and checkpointer each).")

    # --- CDS Hooks (cds_hooks/) ---------------------------------------------------------
    cds_hooks_issuers: dict[str, CdsHooksIssuer] = Field(
        default_factory=dict, description="JSON: JWT issuer -> {jwks_url | jwks, jku, site, locale_code, fhir_servers}; none = every hook call is 401.")
    cds_hooks_base_url: str | None = Field(
        default=None, description="The public base URL (what EHRs call; a JWT's `aud` is checked against it); unset = the request's own.")
    cds_hooks_algorithms: list[str] = Field(default_factory=lambda: ["ES384", "RS384"], description="JWT algorithms accepted (asymmetric only).")
    cds_hooks_max_token_lifetime: int = Field(default=600, ge=10, le=86400, description="Longest exp - iat a JWT may have, in seconds.")
    cds_hooks_cors_origins: list[str] = Field(default_factory=lambda: ["*"], description="Origins allowed to call /cds-services from a browser.")
    cds_hooks_fhir_timeout: float = Field(default=2.0, gt=0, le=30, description="Seconds for fetching missing prefetch data from the EHR's FHIR server.")

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    def llm_for(self, agent: str) -> tuple[str, str | None, str | None]:
        """(model, base_url, api_key) for the doctor or the pharmacist."""
        model = getattr(self, f"{agent}_model") or self.llm_model
        base_url = getattr(self, f"{agent}_base_url") or self.llm_base_url
        key = getattr(self, f"{agent}_api_key") or self.llm_api_key
        return model, base_url, key.get_secret_value() if key else None


@cache
def get_settings() -> Settings:
    return Settings()
