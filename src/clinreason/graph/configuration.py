"""Per-run configuration of the graph, read from a run's `configurable`.

A LangGraph Server (or Studio) run passes `{"configurable": {"protocol": ..., "profile": ...,
"agent_backend": ..., "max_rounds": ...}}`; clinreason's own Pipeline passes only `thread_id`,
so every field is optional and an absent one keeps today's behaviour: the request's protocol
(else the default), the patient's `locale_code`, and the process settings (CLINREASON_*).
Keys the model does not know (thread_id, checkpoint_ns, the server's own) are ignored."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from clinreason.config import Settings


class Configuration(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    protocol: str | None = Field(default=None, description="Protocol id when the input names none.")
    profile: str | None = Field(default=None, description="Profile id or locale code when the patient has no "
                                                          "locale_code.")
    agent_backend: Literal["rules", "llm"] | None = Field(default=None, description="Agent backend; default "
                                                                                      "CLINREASON_AGENT_BACKEND.")
    max_rounds: int | None = Field(default=None, ge=1, le=10, description="Doctor/pharmacist round cap; default "
                                                                           "CLINREASON_MAX_ROUNDS.")

    @classmethod
    def from_runnable_config(cls, config: dict[str, Any] | None = None) -> Configuration:
        """The configuration a run was given (a RunnableConfig, or None). Bad values raise a
        pydantic ValidationError naming the key."""
        configurable = (config or {}).get("configurable") or {}
        return cls.model_validate({name: configurable[name] for name in cls.model_fields if configurable.get(name) is not None})

    def settings(self, base: Settings) -> Settings:
        """`base` with this run's agent backend and round cap."""
        update = {k: v for k, v in (("agent_backend", self.agent_backend), ("max_rounds", self.max_rounds)) if v is not None}
        return base.model_copy(update=update) if update else base
