"""Errors raised across the public API."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One problem with one input field, addressed by a dotted path."""

    field: str
    message: str
    type: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class InvalidPatient(ValueError):
    """The patient input was rejected; `errors` names every offending field."""

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        lines = "\n".join(f"  - {e}" for e in errors)
        super().__init__(f"invalid patient ({len(errors)} error(s)):\n{lines}")

    def as_dicts(self) -> list[dict[str, str]]:
        return [{"field": e.field, "message": e.message, "type": e.type} for e in self.errors]
