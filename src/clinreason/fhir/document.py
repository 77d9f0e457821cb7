"""A stored assessment as a FHIR R4 document Bundle (GET /v1/assessments/{id}/fhir).

The Bundle holds, in order: the Composition (the clinician report, one section per `## ` heading of
its Markdown), the Patient (only what the input held: sex, and age in the narrative), the software
that wrote it (a Device: the Composition's and the issues' author), a MedicationRequest (draft
proposal) for a treatment plan or a ServiceRequest for a referral, a DetectedIssue per exclusion and
per caution of the protocol's evaluation, and, once a prescriber signed, a Provenance of that sign-off.

Every word comes from the assessment and its protocol's spec; structured values (dose quantity,
timing, priority) are given only where the text maps to them exactly, else the text stands alone.
Ids are name-based UUIDs of the assessment, so the same stored record always gives the same Bundle,
and a new document (a new Bundle identifier) follows a sign-off. The result is parsed with
fhirclient's R4 models (strict) and served as they re-serialise it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from clinreason.assessment import Assessment
from clinreason.errors import InvalidInput
from clinreason.fhir import narrative
from clinreason.fhir.codes import GENDERS, LOINC, SNOMED, UCUM
from clinreason.fhir.models import r4
from clinreason.protocols.registry import get_spec
from clinreason.protocols.result import Caution, Exclusion, Regimen
from clinreason.protocols.spec import ProtocolSpec
from clinreason.rendering import report_document
from clinreason.rendering.notification import regimen_words, route_words, status_words

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:clinreason:fhir-document")
GTS = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
RFC3986 = "urn:ietf:rfc:3986"
PRESCRIBER_SYSTEM = "urn:clinreason:prescriber"  # the prescriber id of a sign-off: the signing API key's name

REPORT_TYPE = {"coding": [{"system": LOINC, "code": "11488-4", "display": "Consult note"}], "text": "Pharmacist assessment report"}
REFERRAL_CODE = {"coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}], "text": "Referral"}
EMPTY = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/list-empty-reason", "code": "unavailable"}]}
ORAL_ROUTES = {"po", "oral"}
ORAL = {"system": SNOMED, "code": "26643006", "display": "Oral route"}
# Caution severity -> DetectedIssue.severity; an exclusion takes the option away: high.
SEVERITY = {"major": "high", "moderate": "moderate", "minor": "low", "counsel": "low"}
# Urgency of the decision table -> ServiceRequest.priority (request-priority); "none" has no priority.
PRIORITY = {"routine": "routine", "within_24_48h": "urgent", "emergency_or_same_day": "asap"}
# Frequency as profiles write it -> (GTS code, times per day); "once" is a single administration.
FREQUENCY = {"qd": ("QD", 1), "od": ("QD", 1), "daily": ("QD", 1), "once daily": ("QD", 1), "bid": ("BID", 2),
             "twice daily": ("BID", 2), "tid": ("TID", 3), "three times daily": ("TID", 3), "qid": ("QID", 4),
             "four times daily": ("QID", 4)}
_DURATION = re.compile(r"^(\d+)\s*(day|days|week|weeks)$", re.IGNORECASE)
_DOSE = re.compile(r"^(\d+(?:\.\d+)?)\s*(mg|g|mcg|mL)$")
UCUM_UNITS = {"mg": "mg", "g": "g", "mcg": "ug", "mL": "mL", "day": "d", "days": "d", "week": "wk", "weeks": "wk"}
_INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
# Report headings -> the entries that section states (lower case); the Summary states them all.
SECTION_ENTRIES = {"summary": ("request", "exclusion", "caution"), "plan": ("request",), "referral": ("request",),
                   "medication review": ("caution",), "pharmacist review": ("caution",)}


class NotADocument(InvalidInput):
    """A deterministic result (not stored, no id) has no FHIR document."""

    problem_type = "not-a-document"
    title = "No document for this assessment"


def _urn(a: Assessment, *parts: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, '/'.join((a.id or '', *parts)))}"


def _ref(full_url: str, display: str | None = None) -> dict[str, str]:
    return {"reference": full_url, **({"display": display} if display else {})}


def _instant(value: str | None, fallback: str) -> str:
    return value if value and _INSTANT.match(value) else fallback


def _resource(full_url: str, resource_type: str, div: str | None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": resource_type, "id": full_url.removeprefix("urn:uuid:")}
    if div:
        body["text"] = {"status": "generated", "div": div}
    body.update({k: v for k, v in fields.items() if v not in (None, [], {}, "")})
    return {"fullUrl": full_url, "resource": body}


def _patient(url: str, patient: Mapping[str, Any] | None) -> dict[str, Any]:
    """Only what the input held: clinreason keeps no name, birth date or identifier."""
    patient = patient or {}
    age, sex = patient.get("age"), str(patient.get("sex") or "")
    said = [f"Age {age}" if age is not None else "Age not recorded", f"sex assigned at birth {sex.replace('_', ' ')}" if sex else
            "sex not recorded"]
    return _resource(url, "Patient", narrative.plain(", ".join(said) + ".", "Direct identifiers are not held by clinreason."),
                     gender=GENDERS.get(sex.lower()))


def _device(url: str, a: Assessment) -> dict[str, Any]:
    from clinreason import __version__

    p = a.protocol
    versions = [("software", str((a.audit or {}).get("clinreason_version") or __version__)),
                ("protocol", f"{p.protocol_id} {p.protocol_version}"), ("profile", f"{p.profile_id} {p.profile_version}"),
                ("formulary", a.formulary_version)]
    return _resource(url, "Device", narrative.plain("clinreason, " + "; ".join(f"{k} {v}" for k, v in versions) + "."),
                     deviceName=[{"name": "clinreason", "type": "user-friendly-name"}],
                     version=[{"type": {"text": kind}, "value": value} for kind, value in versions if value])


def _dosage(r: Regimen) -> dict[str, Any]:
    """The regimen's words, with timing, dose and route structured where the text says exactly that."""
    out: dict[str, Any] = {"text": regimen_words(r)}
    freq, duration = r.frequency.strip().lower(), r.duration.strip()
    if freq == "once" and "single" in duration.lower():
        out["timing"] = {"repeat": {"count": 1}}
    elif freq in FREQUENCY and (m := _DURATION.match(duration)):
        code, per_day = FREQUENCY[freq]
        out["timing"] = {"repeat": {"boundsDuration": {"value": int(m.group(1)), "unit": m.group(2).lower(), "system": UCUM,
                                                       "code": UCUM_UNITS[m.group(2).lower()]},
                                    "frequency": per_day, "period": 1, "periodUnit": "d"},
                         "code": {"coding": [{"system": GTS, "code": code}], "text": r.frequency}}
    route: dict[str, Any] = {"text": route_words(r.route)}
    if r.route.strip().lower() in ORAL_ROUTES:
        route["coding"] = [ORAL]
    out["route"] = route
    if m := _DOSE.match(r.dose.strip()):
        value = float(m.group(1))
        out["doseAndRate"] = [{"doseQuantity": {"value": int(value) if value.is_integer() else value, "unit": m.group(2),
                                                "system": UCUM, "code": UCUM_UNITS[m.group(2)]}}]
    return out


def _rule(spec: ProtocolSpec, a: Assessment, rule_id: str) -> dict[str, Any]:
    profile = spec.profiles.get(a.protocol.profile_id)
    title = spec.rule_title(rule_id, profile) if profile is not None and rule_id in spec.rules else rule_id
    return {"coding": [{"system": f"urn:clinreason:rule:{a.protocol.protocol_id}", "code": rule_id, "display": title}], "text": title}


def _option_name(spec: ProtocolSpec, option: str) -> str:
    return spec.option_name(option) if option in spec.formulary.options else option


def _exclusion_issue(url: str, spec: ProtocolSpec, a: Assessment, option: str, x: Exclusion, common: dict[str, Any]) -> dict[str, Any]:
    name = _option_name(spec, option)
    # The excluded option is not proposed, so no resource stands for it: named by display only.
    return _resource(url, "DetectedIssue", narrative.plain(f"{name} excluded: {x.reason}", f"Evidence: {x.evidence}"),
                     status="final", code=_rule(spec, a, x.rule_id), severity="high", implicated=[{"display": name}],
                     detail=x.reason, evidence=[{"code": [{"text": x.evidence}]}], **common)


def _caution_issue(url: str, spec: ProtocolSpec, a: Assessment, c: Caution, proposal: tuple[str, str] | None,
                   common: dict[str, Any]) -> dict[str, Any]:
    implicated = []
    if c.option is not None:
        implicated = [_ref(proposal[1], _option_name(spec, c.option))] if proposal and proposal[0] == c.option else \
            [{"display": _option_name(spec, c.option)}]
    return _resource(url, "DetectedIssue", narrative.plain(c.message, c.action, f"Evidence: {c.evidence}"),
                     status="final", code=_rule(spec, a, c.rule_id), severity=SEVERITY.get(c.severity), implicated=implicated,
                     detail=c.message, evidence=[{"code": [{"text": c.evidence}]}] if c.evidence else [],
                     mitigation=[{"action": {"text": c.action}}] if c.action else [], **common)


def fhir_document(a: Assessment, patient: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The document Bundle of a stored (full-mode) assessment. `patient` is its input (for sex and age;
    None: not recorded). Validated by fhirclient's R4 models; FhirUnavailable when they are not installed."""
    if not a.id:
        raise NotADocument("a FHIR document is made from a stored full-mode assessment; a deterministic result is not stored")
    spec = get_spec(a.protocol.protocol_id)
    result = a.protocol
    created = _instant((a.audit or {}).get("created_at"), datetime.now(UTC).isoformat(timespec="seconds"))
    s = a.signoff
    signed = _instant(s.signed_at, created) if s is not None else None
    plan = a.plan
    action = plan.action if plan is not None else ("treat" if a.recommendation else "refer")
    regimen = (plan.regimen if plan is not None else a.recommendation) if action == "treat" else None
    decision = spec.decisions.get(result.decision)
    meaning = decision.meaning if decision is not None else result.decision.replace("_", " ")
    urls = {k: _urn(a, k) for k in ("composition", "patient", "device", "request", "provenance")}
    subject, author = _ref(urls["patient"]), _ref(urls["device"], "clinreason")
    common = {"patient": subject, "identifiedDateTime": created, "author": author}

    entries: dict[str, list[dict[str, Any]]] = {"request": [], "exclusion": [], "caution": []}
    proposal = None
    if regimen is not None:
        proposal = (regimen.agent, urls["request"])
        entries["request"].append(_resource(
            urls["request"], "MedicationRequest", narrative.plain(f"Proposed: {regimen_words(regimen)}."),
            status="draft", intent="proposal", medicationCodeableConcept={"text": regimen.drug}, subject=subject, authoredOn=created,
            reasonCode=[{"text": spec.title}], dosageInstruction=[_dosage(regimen)],
            note=[{"text": regimen.note}] if regimen.note else []))
    elif action == "refer":
        urgency = a.referral.urgency if a.referral is not None else spec.referral_urgency(result)
        reasons = [meaning, *(c.text for c in (a.referral.reasons if a.referral is not None else []))]
        advice = " ".join(c.text for c in a.referral.patient_advice) if a.referral is not None else ""
        entries["request"].append(_resource(
            urls["request"], "ServiceRequest", narrative.plain(f"Referral: {meaning}.", advice),
            status="draft" if a.status == "awaiting_signoff" else "active", intent="proposal", priority=PRIORITY.get(urgency),
            code=REFERRAL_CODE, subject=subject, authoredOn=created, reasonCode=[{"text": r} for r in dict.fromkeys(reasons)],
            patientInstruction=advice))
    for ev in result.options:
        for n, x in enumerate(ev.exclusions):
            entries["exclusion"].append(_exclusion_issue(_urn(a, "exclusion", ev.option, str(n)), spec, a, ev.option, x, common))
    for n, c in enumerate(result.cautions):
        entries["caution"].append(_caution_issue(_urn(a, "caution", str(n)), spec, a, c, proposal, common))

    doc = report_document(a)
    preamble, parts = narrative.split(doc.markdown)
    sections, referenced = [], set()
    for part in parts:
        refs = [e["fullUrl"] for kind in SECTION_ENTRIES.get(part.title.lower(), ()) for e in entries[kind]]
        referenced.update(refs)
        section: dict[str, Any] = {"title": part.title}
        if part.div:
            section["text"] = {"status": "generated", "div": part.div}
        if refs:
            section["entry"] = [{"reference": r} for r in refs]
        if "text" not in section and "entry" not in section:
            section["emptyReason"] = EMPTY
        sections.append(section)
    # A report without the usual headings still lists every entry, under its first section.
    stray = [e["fullUrl"] for kind in entries.values() for e in kind if e["fullUrl"] not in referenced]
    if stray and sections:
        sections[0].setdefault("entry", []).extend({"reference": r} for r in stray)
        sections[0].pop("emptyReason", None)

    composition = _resource(
        urls["composition"], "Composition", preamble or narrative.plain(doc.title, f"Assessment {a.id}, {status_words(a.status)}."),
        identifier={"system": RFC3986, "value": _urn(a, "composition-identifier")},
        status="preliminary" if a.status == "awaiting_signoff" else "final", type=REPORT_TYPE, subject=subject,
        date=signed or created, author=[author], title=doc.title,
        attester=[{"mode": "legal", "time": signed, "party": _prescriber(s.prescriber_id)}] if s is not None else [],
        section=sections)
    resources = [composition, _patient(urls["patient"], patient), _device(urls["device"], a), *entries["request"],
                 *entries["exclusion"], *entries["caution"]]
    if s is not None:
        targets = [_ref(urls["composition"]), *(_ref(e["fullUrl"]) for e in entries["request"])]
        resources.append(_resource(
            urls["provenance"], "Provenance", narrative.plain(f"Sign-off: {s.action} by {s.prescriber_id} at {signed}.", s.comment),
            target=targets, occurredDateTime=signed, recorded=signed, activity={"text": s.action},
            agent=[{"type": {"coding": [{"system": PARTICIPANT, "code": "verifier", "display": "Verifier"}]},
                    "who": _prescriber(s.prescriber_id)}]))
    bundle = {"resourceType": "Bundle", "id": _urn(a, "bundle", signed or "").removeprefix("urn:uuid:"),
              "identifier": {"system": RFC3986, "value": _urn(a, "document", signed or "")}, "type": "document",
              "timestamp": signed or created, "entry": resources}
    return validated(bundle)


def _prescriber(prescriber_id: str) -> dict[str, Any]:
    # The prescriber is known by the id the sign-off recorded, not a Practitioner resource clinreason does not hold.
    return {"type": "Practitioner", "identifier": {"system": PRESCRIBER_SYSTEM, "value": prescriber_id}, "display": prescriber_id}


def validated(bundle: dict[str, Any]) -> dict[str, Any]:
    """`bundle` parsed strictly by fhirclient's R4 models (FHIRValidationError if it is not valid R4),
    as the models re-serialise it."""
    return r4("bundle", "Bundle")(bundle, strict=True).as_json()
