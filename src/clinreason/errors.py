"""One exception tree for the whole package.

Every error a caller can act on is a `ClinreasonError` and carries what each
interface needs to report it the same way: the problem type and HTTP status
(RFC 9457, api/problems.py), the CLI exit code, a title, and field-level
errors where there are any. The API and CLI map errors by these attributes,
never class by class.

    ClinreasonError
    ├── InvalidInput        422, exit 2   (InvalidPatient, InvalidSignoff, ...)
    ├── NotFound            404, exit 3
    ├── NotAcceptable       406, exit 2   (a format nobody offers: Accept, --format)
    ├── Conflict            409, exit 4   (not awaiting sign-off, blocking checks pending, ...)
    └── UpstreamError       502, exit 5   (an LLM or another service failed)
"""

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


class ClinreasonError(Exception):
    """Base of every error clinreason raises on purpose."""

    status = 500
    exit_code = 1
    problem_type = "error"
    title = "Error"
    headers: dict[str, str] | None = None  # extra response headers (Retry-After)

    def detail(self) -> str:
        """The problem's `detail`: what happened, for a person."""
        return str(self)

    def field_errors(self) -> list[dict[str, str]]:
        """[{"field", "message"}] for the problem body and the CLI; empty when no field is at fault."""
        return []


class InvalidInput(ClinreasonError, ValueError):
    """The request is wrong; resending it unchanged fails the same way."""

    status = 422
    exit_code = 2
    problem_type = "invalid-input"
    title = "Invalid input"


class NotFound(ClinreasonError, KeyError):
    status = 404
    exit_code = 3
    problem_type = "not-found"
    title = "Not found"

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else self.title


class NotAcceptable(ClinreasonError):
    """None of the formats the client accepts is offered; `supported` lists those that are."""

    status = 406
    exit_code = 2
    problem_type = "not-acceptable"
    title = "Not acceptable"

    def __init__(self, message: str, supported: list[str] | tuple[str, ...]):
        super().__init__(message)
        self.supported = list(supported)
        self.headers = {"Vary": "Accept"}

    def detail(self) -> str:
        return f"{self}; supported: {', '.join(self.supported)}"

    def field_errors(self) -> list[dict[str, str]]:
        return [{"field": "Accept", "message": f"supported: {', '.join(self.supported)}"}]


class Conflict(ClinreasonError):
    """The request is valid but the resource's state does not allow it now."""

    status = 409
    exit_code = 4
    problem_type = "conflict"
    title = "Conflict"


class UpstreamError(ClinreasonError):
    """A service clinreason depends on (an LLM endpoint, a database) failed."""

    status = 502
    exit_code = 5
    problem_type = "upstream-error"
    title = "Upstream service failed"


class InvalidPatient(InvalidInput):
    """The patient input was rejected; `errors` names every offending field."""

    problem_type = "invalid-patient"
    title = "Invalid patient"

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        lines = "\n".join(f"  - {e}" for e in errors)
        super().__init__(f"invalid patient ({len(errors)} error(s)):\n{lines}")

    def detail(self) -> str:
        return f"{len(self.errors)} field error(s)"  # `errors` lists them

    def as_dicts(self) -> list[dict[str, str]]:
        return [{"field": e.field, "message": e.message, "type": e.type} for e in self.errors]

    def field_errors(self) -> list[dict[str, str]]:
        return [{"field": e.field, "message": e.message} for e in self.errors]
