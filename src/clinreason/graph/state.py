"""Graph state. Values are JSON-compatible so any checkpointer (SQLite,
Postgres) stores and restores them exactly; `load_*` helpers give typed views.

List fields that grow during a run (evidence, rounds, outcomes) have reducers: a node returns
only its new items and LangGraph appends them, so no node reads-and-rewrites the whole list.
`GraphInput` is what a run is started with (the patient, optionally the protocol and ids), kept
apart from the state so LangGraph Server and Studio show and validate only the input."""

from __future__ import annotations

import json
import operator
import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Annotated, Any, Generic, TypeVar, get_type_hints

from typing_extensions import (  # pydantic (the server's schemas) needs it before 3.12
    Required,
    TypedDict,
)

from clinreason.agents.models import AgentOutcome, Proposal, ReferralNote, Review, Round
from clinreason.graph.evidence import Evidence
from clinreason.graph.safety import GateResult
from clinreason.protocols.registry import DEFAULT_PROTOCOL, Validated, revalidate
from clinreason.protocols.result import ProtocolResult
from clinreason.protocols.spec import ProtocolSpec

T = TypeVar("T")


def append(left: list[Any] | None, right: list[Any] | None) -> list[Any]:
    """Reducer of the growing list fields: the update's items after the state's (None adds nothing)."""
    return operator.add(left or [], right or [])


class GraphInput(TypedDict, total=False):
    """What a run starts from. A LangGraph Server run gives `patient` (a clinreason request: the
    patient JSON, whose own `protocol` key is honoured) and optionally `protocol_id`; clinreason's
    Pipeline also gives its assessment id, creation time and a FHIR input's provenance. Intake fills
    what is absent: the protocol from the run's configuration (else the default), the assessment
    id from the thread id, the creation time from the clock."""

    patient: Required[dict[str, Any]]
    protocol_id: str
    assessment_id: str
    created_at: str
    input_sources: dict[str, Any] | None


class GraphState(TypedDict, total=False):
    assessment_id: str
    created_at: str
    protocol_id: str  # the registered protocol (absent in states written before protocols were plug-ins: the default)
    patient: dict[str, Any]  # the validated patient, JSON form of the protocol's input model
    input_sources: dict[str, Any] | None  # a FHIR input's provenance: field -> resource and path, resources not used
    protocol: dict[str, Any]  # ProtocolResult
    evidence: Annotated[list[dict[str, Any]], append]  # Evidence: chunk ids and why they were retrieved
    rounds: Annotated[list[dict[str, Any]], append]  # Round
    proposal: dict[str, Any] | None  # current doctor Proposal
    prepared_review: dict[str, Any] | None  # round 1, LLM backend: the review of the first allowed option made during the doctor's call
    review_path: str  # how round 1's review was made: sequential | parallel, used | parallel, discarded
    referral: dict[str, Any] | None  # ReferralNote
    outcomes: Annotated[list[dict[str, Any]], append]  # AgentOutcome of every agent call (backends, fallbacks, vetoed bounds)
    agents_deadline: float  # wall-clock time after which the rules backend answers without an LLM call
    gate: dict[str, Any]  # GateResult
    signoff: dict[str, Any] | None
    status: str  # awaiting_signoff | final
    report_markdown: str
    citations: list[dict[str, Any]]
    citation_stats: dict[str, int]
    audit: dict[str, Any]


# The fields whose reducer is `append` (graph/build.py's chained nodes apply it between their steps).
APPENDED = frozenset(k for k, hint in get_type_hints(GraphState, include_extras=True).items() if append in getattr(hint, "__metadata__", ()))


class _Parsed(Generic[T]):
    """Typed views of state values, remembered by the identity of the JSON value they were parsed
    from: LangGraph hands every node of a run the same objects until a node writes a new one, so a
    run parses the protocol result once instead of once per node and routing function. The entry
    holds the value itself, so an id is never reused while it is remembered. Views are read-only."""

    def __init__(self, parse: Callable[[Any], T], size: int = 256):
        self._parse, self._size = parse, size
        self._items: dict[int, tuple[Any, T]] = {}
        self._lock = threading.Lock()

    def __call__(self, raw: Any) -> T:
        hit = self._items.get(id(raw))
        if hit is not None and hit[0] is raw:
            return hit[1]
        value = self._parse(raw)
        with self._lock:
            if len(self._items) >= self._size:
                self._items.pop(next(iter(self._items)))  # the oldest: runs move on, their values are not read again
            self._items[id(raw)] = (raw, value)
        return value


_protocol = _Parsed(ProtocolResult.model_validate)
_patient_key = _Parsed(lambda patient: json.dumps(patient, sort_keys=True))


def request_of(s: GraphState) -> Validated:
    """The validated request (protocol, profile, patient) the state holds: parsed once per
    distinct patient, not once per node (the state keeps JSON, for the checkpointer)."""
    return _typed(s.get("protocol_id") or DEFAULT_PROTOCOL, _patient_key(s["patient"]))


@lru_cache(maxsize=256)
def _typed(protocol_id: str, patient: str) -> Validated:
    return revalidate(protocol_id, json.loads(patient))


def spec_of(s: GraphState) -> ProtocolSpec:
    return request_of(s).spec


def patient_of(s: GraphState) -> Any:
    return request_of(s).patient


def protocol_of(s: GraphState) -> ProtocolResult:
    return _protocol(s["protocol"])


def rounds_of(s: GraphState) -> list[Round]:
    return [Round.model_validate(r) for r in s.get("rounds") or []]


def evidence_of(s: GraphState) -> list[Evidence]:
    return [Evidence.model_validate(e) for e in s.get("evidence") or []]


def proposal_of(s: GraphState) -> Proposal | None:
    return Proposal.model_validate(s["proposal"]) if s.get("proposal") else None


def referral_of(s: GraphState) -> ReferralNote | None:
    return ReferralNote.model_validate(s["referral"]) if s.get("referral") else None


def gate_of(s: GraphState) -> GateResult:
    return GateResult.model_validate(s["gate"])


def outcomes_of(s: GraphState) -> list[AgentOutcome]:
    return [AgentOutcome.model_validate(o) for o in s.get("outcomes") or []]


def last_review(s: GraphState) -> Review | None:
    rounds = rounds_of(s)
    return rounds[-1].review if rounds else None
