"""The protocol registry: `(protocol, profile)` -> spec and profile.

Registering a protocol is one line here: its package name. Everything else it
needs (rules, profiles, options, corpus, cues, wording) lives in its package.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

from clinreason.errors import FieldError, InvalidPatient
from clinreason.protocols.canonical import canonical_json
from clinreason.protocols.profile import Profile
from clinreason.protocols.result import ProtocolResult
from clinreason.protocols.spec import ProtocolSpec

PACKAGES = (
    "clinreason.protocols.uti_cystitis",
    "clinreason.protocols.lyme_pep",
)
DEFAULT_PROTOCOL = "uti-cystitis"  # a request without `protocol` (every request before protocols were plug-ins)


@cache
def _package_spec(package: str) -> ProtocolSpec:
    return importlib.import_module(package).SPEC


@cache
def registry() -> dict[str, ProtocolSpec]:
    """Every registered protocol, by id, in PACKAGES order (imports every package)."""
    specs: dict[str, ProtocolSpec] = {}
    for name in PACKAGES:
        spec = _package_spec(name)
        if spec.id in specs:
            raise ValueError(f"two protocols registered as {spec.id!r}")
        specs[spec.id] = spec
    if DEFAULT_PROTOCOL not in specs:
        raise ValueError(f"default protocol {DEFAULT_PROTOCOL!r} is not registered")
    others = [i for i, spec in specs.items() if i != DEFAULT_PROTOCOL and (spec.legacy_plan_actions or spec.legacy_documents)]
    if others:
        # legacy_plan_actions and legacy_chunk_id read the default protocol's only: no other has such records.
        raise ValueError(f"only the default protocol has records from before plug-ins, not {', '.join(others)}")
    return specs


def get_spec(protocol_id: str) -> ProtocolSpec:
    """The registered spec, or KeyError. Packages are imported in PACKAGES order only until one has
    this id: a command about one protocol (a sample of the default one, say) loads no other."""
    for name in PACKAGES:
        spec = _package_spec(name)
        if spec.id == protocol_id:
            return spec
    raise KeyError(protocol_id)


def protocol_of(request: Any) -> str:
    """The protocol a request names (absent: the default)."""
    if isinstance(request, dict) and "protocol" in request:
        return request["protocol"]
    return DEFAULT_PROTOCOL


@dataclass(frozen=True)
class Validated:
    """A request checked once: its protocol, profile and validated patient. Everything downstream
    (the graph, the store, the report) takes this, so the patient is validated once per request."""

    spec: ProtocolSpec
    profile: Profile
    patient: Any  # the protocol's input model

    @property
    def protocol_id(self) -> str:
        return self.spec.id

    @cached_property
    def patient_json(self) -> dict[str, Any]:
        return self.patient.model_dump(mode="json")

    @cached_property
    def input_hash(self) -> str:
        """sha256 of the canonical patient JSON (the protocol is recorded beside it in the audit)."""
        return hashlib.sha256(canonical_json(self.patient_json)).hexdigest()

    def evaluate(self) -> ProtocolResult:
        return self.spec.evaluate(self.patient, self.profile)


def revalidate(protocol_id: str, patient_json: dict[str, Any]) -> Validated:
    """A request rebuilt from what the graph state or the store kept (already validated once)."""
    return resolve({**patient_json, "protocol": protocol_id})


def resolve(request: Any) -> Validated:
    """Spec, profile and the validated patient of a request, or InvalidPatient naming the field.

    `request` is the request JSON (a dict, `protocol` selecting the protocol) or an instance of a
    protocol's input model."""
    # A dict is no protocol's input model: only the protocol it names is loaded.
    owner = None if isinstance(request, dict) else next(
        (spec for spec in registry().values() if isinstance(request, spec.input_model)), None)
    if owner is not None:
        spec, patient = owner, request
    else:
        protocol_id = protocol_of(request)
        try:
            spec = get_spec(protocol_id)
        except KeyError:
            raise InvalidPatient([FieldError("protocol", f"unknown protocol {protocol_id!r} (available: "
                                             f"{', '.join(sorted(registry()))})", "unknown_protocol")]) from None
        data = {k: v for k, v in request.items() if k != "protocol"} if isinstance(request, dict) else request
        patient = spec.parse(data)
    profile = spec.profile_for_locale(patient.locale_code)
    if profile is None:
        known = ", ".join(sorted(spec.locales))
        raise InvalidPatient([FieldError("locale_code", f"no protocol profile for {patient.locale_code!r} (available: {known})",
                                         "unknown_profile")])
    if errors := spec.check(patient, profile):
        raise InvalidPatient(errors)
    return Validated(spec, profile, patient)


def _sample_index(spec: ProtocolSpec) -> dict[str, str]:
    return json.loads(spec.read_text("samples", "index.json")) if spec.has_file("samples", "index.json") else {}


def samples() -> dict[str, tuple[ProtocolSpec, str]]:
    """Every bundled sample: name -> (its protocol, one-line description). Names are unique across protocols."""
    out: dict[str, tuple[ProtocolSpec, str]] = {}
    for spec in registry().values():
        for name, text in _sample_index(spec).items():
            if name in out:
                raise ValueError(f"sample {name!r} is bundled by two protocols")
            out[name] = (spec, text)
    return out


def sample(name: str) -> tuple[ProtocolSpec, str]:
    """One bundled sample: (its protocol, one-line description), or KeyError. Protocols are loaded in
    PACKAGES order only until one bundles it; `samples()` checks that no two bundle one name."""
    for package in PACKAGES:
        spec = _package_spec(package)
        if name in (index := _sample_index(spec)):
            return spec, index[name]
    raise KeyError(name)


@cache
def legacy_plan_actions() -> dict[str, str]:
    """Plan actions of records stored before protocols were plug-ins -> today's. Those records are all
    the default protocol's (the only one then), so every plan read loads no other protocol."""
    return dict(get_spec(DEFAULT_PROTOCOL).legacy_plan_actions)


def legacy_chunk_id(chunk_id: str) -> str:
    """A chunk id stored before knowledge bases were scoped (no protocol/profile prefix) -> its scoped id
    in the default protocol's default profile, with renamed documents followed."""
    if "/" in chunk_id:
        return chunk_id
    spec = get_spec(DEFAULT_PROTOCOL)
    doc, sep, section = chunk_id.partition("#")
    return f"{spec.id}/{spec.default_profile.id}/{spec.legacy_documents.get(doc, doc)}{sep}{section}"
