"""A FHIR R4 Bundle -> a protocol's patient JSON, with where every field came from.

What the record holds as coded data (Patient, Observation, MedicationStatement/MedicationRequest,
AllergyIntolerance, Condition) is mapped through the protocol's `fhir.toml`; everything else is
answered in a QuestionnaireResponse to the protocol's generated Questionnaire (questionnaire.py).
Medication and allergy text goes to the formulary's recognition like any typed entry, so the
fail-safe policy applies: what it does not recognise is not trusted.

Nothing is guessed: a required field the Bundle does not settle, two resources that disagree, or a
value that cannot be read is a field error naming the FHIR path. Resources left out on purpose
(stopped medications, refuted allergies, another patient's data) are listed in `ignored`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Any

from clinreason.errors import FieldError, InvalidPatient
from clinreason.fhir import codes
from clinreason.fhir.models import r4
from clinreason.fhir.questionnaire import answer_to_value, field_items, protocol_of_canonical
from clinreason.fhir.units import convert
from clinreason.protocols.fhir_map import CodeSet, FhirMapping
from clinreason.protocols.registry import DEFAULT_PROTOCOL, Validated, registry, resolve
from clinreason.protocols.spec import ProtocolSpec

FHIR_JSON = "application/fhir+json"
_OBSERVATION_OK = {"final", "amended", "corrected"}
_MED_STATEMENT_OK = {"active"}
_MED_REQUEST_OK = {"active"}
_CONDITION_ACTIVE = {"active", "recurrence", "relapse"}
_NOT_TRUE = {"refuted", "entered-in-error"}


@dataclass(frozen=True)
class Source:
    """Where one input field (or list entry) came from."""

    field: str
    resource: str  # "Observation/f205"
    path: str  # the element within it: "valueQuantity"
    note: str = ""

    def describe(self) -> str:
        return f"{self.resource}.{self.path}" + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True)
class Ignored:
    """A resource deliberately not used, and why."""

    resource: str
    reason: str


@dataclass
class FhirIntake:
    spec: ProtocolSpec
    request: dict[str, Any]  # the protocol's patient JSON, with "protocol"
    sources: list[Source]
    ignored: list[Ignored]

    @cached_property
    def validated(self) -> Validated:
        """The request validated like any JSON request; field errors name the FHIR path."""
        try:
            return resolve(self.request)
        except InvalidPatient as exc:
            raise InvalidPatient([located for e in exc.errors for located in self._locate_all(e)]) from None

    def provenance(self) -> dict[str, Any]:
        """The record kept beside the assessment (audit, report): field -> source, and what was left out."""
        return {"format": "FHIR R4 Bundle",
                "fields": [{"field": s.field, "source": s.describe()} for s in self.sources],
                "ignored": [{"resource": i.resource, "reason": i.reason} for i in self.ignored]}

    def _locate_all(self, error: FieldError) -> list[FieldError]:
        """A missing group is reported as each required item in it, so the client sees what to answer."""
        from clinreason.fhir.questionnaire import field_items

        if error.type == "missing":
            inside = [link for link, item in field_items(self.spec).items() if link.startswith(error.field + ".") and item.get("required")]
            if inside:
                return [self._locate(FieldError(link, error.message, error.type)) for link in inside]
        return [self._locate(error)]

    def _locate(self, error: FieldError) -> FieldError:
        sources = [s for s in self.sources if s.field == error.field or error.field.startswith(s.field + ".")]
        if sources:
            where = "; ".join(s.describe() for s in sources)
            return FieldError(f"{sources[0].resource}.{sources[0].path}", f"{error.field}: {error.message} (from {where})", error.type)
        return FieldError(self._where_to_answer(error.field), f"{error.field}: {error.message}", error.type)

    def _where_to_answer(self, name: str) -> str:
        m = self.spec.fhir
        coded = [f"Observation[{'|'.join(o.codes.loinc)}]" for o in m.observations if o.field == name]
        coded += [f"Condition[{'|'.join(c.codes.snomed + c.codes.icd10)}]" for c in m.conditions if c.field == name]
        if name == m.age:
            coded = ["Patient.birthDate"]
        elif name == m.sex:
            coded = ["Patient.gender"]
        return " or ".join([*coded, f"QuestionnaireResponse.item[{name}]"]) if name != "protocol" else "protocol"


@dataclass
class _Collected:
    """Candidate values of each field, with their sources, before they are merged."""

    values: dict[str, list[tuple[Any, Source]]] = field(default_factory=dict)
    lists: dict[str, list[tuple[str, Source]]] = field(default_factory=dict)
    observed: dict[str, list[tuple[str, Any, Source]]] = field(default_factory=dict)  # field -> (effective time, value, source)
    ignored: list[Ignored] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)

    def put(self, name: str, value: Any, source: Source) -> None:
        self.values.setdefault(name, []).append((value, source))

    def add(self, name: str, text: str, source: Source) -> None:
        self.lists.setdefault(name, []).append((text, source))

    def skip(self, resource: str, reason: str) -> None:
        self.ignored.append(Ignored(resource, reason))

    def observe(self, name: str, when: str, value: Any, source: Source) -> None:
        self.observed.setdefault(name, []).append((when, value, source))

    def latest_observations(self) -> None:
        """A field measured more than once (a lab history) takes its latest result; the earlier ones are listed.
        Two results at the same (or no) time that disagree stay a contradiction for the merge to report."""
        for name, results in self.observed.items():
            latest = max(when for when, _, _ in results)
            for when, value, source in results:
                if when == latest:
                    self.put(name, value, source)
                else:
                    self.skip(source.resource, f"{name}: superseded by a later result ({latest})")


def intake_bundle(bundle: Any, *, protocol_id: str | None = None, locale_code: str | None = None,
                  today: date | None = None) -> FhirIntake:
    """Map a Bundle to a protocol's patient JSON. The protocol is `protocol_id`, else the one whose
    Questionnaire the QuestionnaireResponse answers, else the default. Raises InvalidPatient."""
    entries = _entries(bundle)
    spec = _protocol(entries, protocol_id)
    found = _Collected()
    today = today or datetime.now(UTC).date()
    patient_key = _patient(entries, spec.fhir, found, today)
    index = {_key(r): r for _, r in entries} | {full: r for full, r in entries if full}
    for _, resource in entries:
        kind, key = resource.get("resourceType"), _key(resource)
        if kind in ("Patient", "Medication"):
            continue
        if (other := _other_patient(resource, patient_key)) is not None:
            found.skip(key, f"about another patient ({other})")
            continue
        reader = _READERS.get(str(kind))
        if reader is None:
            found.skip(key, f"{kind} is not read by this protocol's intake")
        else:
            reader(resource, spec, found, index)
    found.latest_observations()
    if locale_code is not None:
        found.put("locale_code", locale_code, Source("locale_code", "request", "locale_code", "query parameter"))
    request, sources = _merge(spec, found)
    if found.errors:
        raise InvalidPatient(found.errors)
    return FhirIntake(spec, {**request, "protocol": spec.id}, sources, found.ignored)


def read_request(body: Any, *, fhir: bool = False, protocol: str | None = None,
                 locale_code: str | None = None) -> tuple[Validated, dict[str, Any] | None]:
    """A request as an interface receives it (REST, MCP): the protocol's patient JSON, or a FHIR Bundle
    with its provenance. A Bundle is read as FHIR whether or not it was declared (`fhir`): it cannot be
    a patient. `protocol` and `locale_code` select for a Bundle only; a JSON patient names them itself."""
    if fhir or (isinstance(body, dict) and body.get("resourceType") == "Bundle"):
        intake = intake_bundle(body, protocol_id=protocol, locale_code=locale_code)
        return intake.validated, intake.provenance()
    given = [name for name, value in (("protocol", protocol), ("locale_code", locale_code)) if value is not None]
    if given:
        raise InvalidPatient([FieldError(name, "for a FHIR Bundle only: a JSON patient names it in the request", "extra_forbidden")
                              for name in given])
    return resolve(body), None


# --- the Bundle -----------------------------------------------------------------------
def _entries(bundle: Any) -> list[tuple[str | None, dict[str, Any]]]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        got = bundle.get("resourceType") if isinstance(bundle, dict) else type(bundle).__name__
        raise InvalidPatient([FieldError("resourceType", f"expected a FHIR Bundle, got {got!r}", "type")])
    _validate_r4(bundle)
    out = []
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource")
        if isinstance(resource, dict):
            out.append((entry.get("fullUrl"), resource))
    return out


def _validate_r4(bundle: dict[str, Any]) -> None:
    """Parse with fhirclient's R4 models: wrong element types, unknown elements and missing required
    elements are field errors naming the element."""
    bundle_model, invalid = r4("bundle", "Bundle"), r4("fhirabstractbase", "FHIRValidationError")
    try:
        bundle_model(bundle, strict=True)
    except invalid as exc:
        raise InvalidPatient(_fhir_errors(exc)) from None
    except Exception as exc:  # fhirclient raises plain errors for an unknown resourceType and the like
        raise InvalidPatient([FieldError("Bundle", f"not a valid FHIR R4 Bundle: {exc}", "fhir")]) from None


def _fhir_errors(exc: Exception, path: str = "Bundle") -> list[FieldError]:
    nested = getattr(exc, "errors", None) or []
    here = path + ("." + exc.path if getattr(exc, "path", None) else "")  # type: ignore[attr-defined]
    if nested and all(isinstance(e, Exception) for e in nested):
        return [err for e in nested for err in _fhir_errors(e, here)]
    message = str(exc).strip().splitlines()[-1].strip().strip("'\"")
    message = re.sub(r"<class '(?:[\w.]+\.)?(\w+)'>", r"\1", message)
    message = re.sub(r"<fhirclient\.models\.[\w.]+?\.(\w+) object at 0x[0-9a-f]+>", r"\1", message)
    if m := re.match(r'Non-optional property "(\w+)" on \w+ is missing', message):
        here, message = f"{here}.{m.group(1)}", "required element is missing"
    return [FieldError(re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", here), message, "fhir")]


def _key(resource: dict[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id') or '(no id)'}"


def _protocol(entries: list[tuple[str | None, dict[str, Any]]], protocol_id: str | None) -> ProtocolSpec:
    specs = registry()
    named = {protocol_of_canonical(r.get("questionnaire")) for _, r in entries if r.get("resourceType") == "QuestionnaireResponse"}
    named.discard(None)
    chosen = protocol_id or (next(iter(named)) if len(named) == 1 else None) or DEFAULT_PROTOCOL
    if chosen not in specs:
        raise InvalidPatient([FieldError("protocol", f"unknown protocol {chosen!r} (available: {', '.join(sorted(specs))})", "unknown_protocol")])
    if named - {chosen}:
        raise InvalidPatient([FieldError("QuestionnaireResponse.questionnaire",
                                         f"answers the questionnaire of {', '.join(sorted(map(str, named)))}, not {chosen!r}", "contradiction")])
    return specs[chosen]


def _other_patient(resource: dict[str, Any], patient_key: set[str]) -> str | None:
    ref = (resource.get("subject") or resource.get("patient") or {}).get("reference")
    return ref if isinstance(ref, str) and patient_key and ref not in patient_key else None


# --- Patient --------------------------------------------------------------------------
def _patient(entries: list[tuple[str | None, dict[str, Any]]], m: FhirMapping, found: _Collected, today: date) -> set[str]:
    patients = [(full, r) for full, r in entries if r.get("resourceType") == "Patient"]
    if len({_key(r) for _, r in patients}) > 1:
        found.errors.append(FieldError("Patient", f"the Bundle holds {len(patients)} patients ({', '.join(_key(r) for _, r in patients)}): "
                                       "send one patient's record", "contradiction"))
        return set()
    if not patients:
        return set()  # age and sex are then reported missing, naming Patient.birthDate and Patient.gender
    full, p = patients[0]
    key = _key(p)
    if isinstance(p.get("birthDate"), str):
        try:
            found.put(m.age, _age(p["birthDate"], today), Source(m.age, key, "birthDate", f"{p['birthDate']}, age on {today.isoformat()}"))
        except ValueError as exc:
            found.errors.append(FieldError(f"{key}.birthDate", str(exc), "fhir"))
    birth_sex = next((e.get("valueCode") for e in p.get("extension") or [] if e.get("url") == codes.BIRTH_SEX), None)
    if birth_sex in codes.BIRTH_SEX_CODES:
        found.put(m.sex, codes.BIRTH_SEX_CODES[birth_sex], Source(m.sex, key, "extension(us-core-birthsex)"))
    elif p.get("gender") in codes.GENDERS:
        found.put(m.sex, codes.GENDERS[p["gender"]], Source(m.sex, key, "gender", "administrative gender; no birth-sex extension"))
    return {key, *([full] if full else [])}


def _age(birth: str, today: date) -> int:
    """Whole years on `today`. A partial date (year, or year and month) is used only when every day
    it could be gives the same age."""
    parts = [int(x) for x in birth.split("-")]
    if len(parts) == 3:
        earliest = latest = date(*parts)
    elif len(parts) == 2:
        earliest, latest = date(parts[0], parts[1], 1), date(parts[0] + parts[1] // 12, parts[1] % 12 + 1, 1).replace(day=1)
        latest = date.fromordinal(latest.toordinal() - 1)
    else:
        earliest, latest = date(parts[0], 1, 1), date(parts[0], 12, 31)

    def years(born: date) -> int:
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if latest > today:
        raise ValueError(f"birth date {birth} is after the assessment date {today.isoformat()}")
    if years(earliest) != years(latest):
        raise ValueError(f"birth date {birth} gives age {years(latest)} or {years(earliest)} on {today.isoformat()}: send the full date")
    return years(latest)


# --- coded resources ------------------------------------------------------------------
def _matches(concept: dict[str, Any] | None, wanted: CodeSet) -> bool:
    if set(codes.codes_in(concept, codes.LOINC)) & set(wanted.loinc) or set(codes.codes_in(concept, codes.SNOMED)) & set(wanted.snomed):
        return True
    if set(codes.codes_in(concept, *codes.ICD10)) & set(wanted.icd10):
        return True
    text = codes.concept_text(concept)
    return bool(text) and text.lower().strip() in wanted.text


def _status(concept: dict[str, Any] | None) -> str | None:
    found = codes.codes_in(concept, *[str(c.get("system")) for c in (concept or {}).get("coding") or []])
    return found[0] if found else None


def _mapped(r: dict[str, Any], maps: tuple[Any, ...], kind: str, found: _Collected) -> list[Any]:
    """The protocol's mappings whose codes the resource's code matches (none: listed as not read)."""
    mapped = [m for m in maps if _matches(r.get("code"), m.codes)]
    if not mapped:
        found.skip(_key(r), f"{codes.concept_text(r.get('code')) or f'uncoded {kind}'!r} is not a {kind} this protocol reads")
    return mapped


def _observation(r: dict[str, Any], spec: ProtocolSpec, found: _Collected, index: dict[str, Any]) -> None:
    key = _key(r)
    mapped = _mapped(r, spec.fhir.observations, "observation", found)
    if not mapped:
        return
    if r.get("status") not in _OBSERVATION_OK:
        found.skip(key, f"status {r.get('status')!r}: only final, amended or corrected results are used")
        return
    when = r.get("effectiveDateTime") or r.get("issued") or ""
    for o in mapped:
        if o.unit is not None:
            if "valueQuantity" not in r:
                found.skip(key, f"no valueQuantity for {o.field} (components are not read: a race-specific estimate is not used)")
                continue
            try:
                value = convert(r["valueQuantity"], o.unit)
            except ValueError as exc:
                found.errors.append(FieldError(f"{key}.valueQuantity", f"{o.field}: {exc}", "fhir"))
                continue
            q = r["valueQuantity"]
            note = f"{q.get('value')} {q.get('code') or q.get('unit') or ''}".strip() + (f", {when}" if when else "")
            found.observe(o.field, when, value, Source(o.field, key, "valueQuantity", note))
        else:
            answer = set(codes.codes_in(r.get("valueCodeableConcept"), codes.LOINC, codes.SNOMED)) & set(o.answers)
            if len(answer) != 1:
                shown = codes.concept_text(r.get("valueCodeableConcept")) or "no coded value"
                found.errors.append(FieldError(f"{key}.valueCodeableConcept", f"{o.field}: {shown!r} is not one of the answers read "
                                               f"({', '.join(sorted(o.answers))})", "fhir"))
                continue
            code = answer.pop()
            found.observe(o.field, when, o.answers[code], Source(o.field, key, "valueCodeableConcept", code + (f", {when}" if when else "")))


def _condition(r: dict[str, Any], spec: ProtocolSpec, found: _Collected, index: dict[str, Any]) -> None:
    key = _key(r)
    mapped = _mapped(r, spec.fhir.conditions, "condition", found)
    if not mapped:
        return
    clinical, verification = _status(r.get("clinicalStatus")), _status(r.get("verificationStatus"))
    if verification in _NOT_TRUE or (clinical is not None and clinical not in _CONDITION_ACTIVE):
        found.skip(key, f"not active (clinicalStatus {clinical}, verificationStatus {verification})")
        return
    for c in mapped:
        found.put(c.field, c.value, Source(c.field, key, "code", codes.concept_text(r.get("code")) or ""))


def _medication(r: dict[str, Any], spec: ProtocolSpec, found: _Collected, index: dict[str, Any]) -> None:
    key, kind, target = _key(r), r.get("resourceType"), spec.fhir.medications
    allowed = _MED_STATEMENT_OK if kind == "MedicationStatement" else _MED_REQUEST_OK
    why_not = (f"status {r.get('status')!r}: only active medications are listed" if r.get("status") not in allowed
               else f"intent {r.get('intent')!r} is not a medication the patient takes"
               if kind == "MedicationRequest" and r.get("intent") not in (None, "order", "original-order", "plan", "instance-order")
               else "this protocol reads no medication list" if target is None else None)
    if why_not or target is None:
        found.skip(key, why_not or "")
        return
    for text, path in _medication_texts(r, index):
        found.add(target, text, Source(target, key, path))


def _medication_texts(r: dict[str, Any], index: dict[str, Any]) -> list[tuple[str, str]]:
    """The entries one medication resource gives: one per ingredient of a referenced product
    (a combination product's ingredients are each checked), else its code's text."""
    if "medicationCodeableConcept" in r:
        return _concept_entries(r["medicationCodeableConcept"], "medicationCodeableConcept")
    ref = (r.get("medicationReference") or {}).get("reference") or ""
    med = referenced_medication(r, index)
    if med is None:
        return [(f"unresolved medication reference {ref or '(none)'}", "medicationReference")]  # unrecognised: fail-safe
    where = f"medicationReference({ref})"
    parts = [(i, ing["itemCodeableConcept"]) for i, ing in enumerate(med.get("ingredient") or []) if "itemCodeableConcept" in ing]
    if parts:
        return [e for i, concept in parts for e in _concept_entries(concept, f"{where}.ingredient[{i}].itemCodeableConcept")]
    return _concept_entries(med.get("code"), f"{where}.code")


def referenced_medication(r: dict[str, Any], index: Mapping[str, Any]) -> dict[str, Any] | None:
    """The Medication a medicationReference names: contained ("#id"), or in the Bundle by "Type/id" or fullUrl."""
    ref = (r.get("medicationReference") or {}).get("reference")
    if not isinstance(ref, str):
        return None
    if ref.startswith("#"):
        med = next((c for c in r.get("contained") or [] if isinstance(c, dict) and ref == f"#{c.get('id')}"), None)
    else:
        med = index.get(ref)
    return med if isinstance(med, dict) else None


def _concept_entries(concept: dict[str, Any] | None, path: str) -> list[tuple[str, str]]:
    """The text a person reads, plus the formulary name of an RxNorm ingredient code the text does
    not already name (so a code and a text that disagree are both checked, never one trusted)."""
    known = codes.rxnorm_ingredients()
    text = codes.concept_text(concept)
    coded = [known[c].replace("_", " ") for c in codes.codes_in(concept, codes.RXNORM) if c in known]
    out = [(text, path)] if text else []
    out += [(name, f"{path}.coding(RxNorm)") for name in coded if not text or name.lower() not in text.lower()]
    if not out:
        shown = ", ".join(f"{codes.system_of(c)}|{c.get('code')}" for c in (concept or {}).get("coding") or []) or "nothing"
        out = [(f"uncoded medication ({shown})"[:200], path)]  # an entry nobody can recognise: blocking, not dropped
    return out


def _allergy(r: dict[str, Any], spec: ProtocolSpec, found: _Collected, index: dict[str, Any]) -> None:
    key = _key(r)
    clinical, verification = _status(r.get("clinicalStatus")), _status(r.get("verificationStatus"))
    categories, target = r.get("category") or [], spec.fhir.allergies
    why_not = (f"not active (clinicalStatus {clinical}, verificationStatus {verification})"
               if verification in _NOT_TRUE or (clinical is not None and clinical != "active")
               else f"records {codes.concept_text(r.get('code'))!r}: nothing to add"
               if set(codes.codes_in(r.get("code"), codes.SNOMED)) & set(spec.fhir.no_allergy_codes)
               else f"category {', '.join(categories)}: not a medication allergy" if categories and "medication" not in categories
               else "this protocol reads no allergy list" if target is None else None)
    if why_not or target is None:
        found.skip(key, why_not or "")
        return
    note = "unconfirmed" if verification == "unconfirmed" else ""
    for text, path in _concept_entries(r.get("code"), "code"):
        found.add(target, text, Source(target, key, path, note))


def _questionnaire_response(r: dict[str, Any], spec: ProtocolSpec, found: _Collected, index: dict[str, Any]) -> None:
    key = _key(r)
    if r.get("status") not in ("completed", "amended"):
        found.errors.append(FieldError(f"{key}.status", f"status {r.get('status')!r}: send a completed (or amended) response", "fhir"))
        return
    items = field_items(spec)
    lists = {f for f, it in items.items() if it.get("repeats")}

    def walk(nodes: list[dict[str, Any]], path: str) -> None:
        for i, node in enumerate(nodes):
            here = f"{path}.item[{i}]"
            link = node.get("linkId")
            if node.get("item"):
                walk(node["item"], here)
            if not node.get("answer"):
                continue
            if link not in items:
                found.errors.append(FieldError(f"{key}{here}", f"linkId {link!r} is not an item of the {spec.id} questionnaire", "fhir"))
                continue
            answers = node["answer"]
            if link not in lists and len(answers) > 1:
                found.errors.append(FieldError(f"{key}{here}", f"{link}: one answer expected, got {len(answers)}", "fhir"))
                continue
            for j, answer in enumerate(answers):
                try:
                    value = answer_to_value(items[link], answer)
                except ValueError as exc:
                    found.errors.append(FieldError(f"{key}{here}.answer[{j}]", f"{link}: {exc}", "fhir"))
                    continue
                source = Source(link, key, f"item[{link}]")
                found.add(link, value, source) if link in lists else found.put(link, value, source)
    walk(r.get("item") or [], "")


_READERS = {"Observation": _observation, "Condition": _condition, "MedicationStatement": _medication,
            "MedicationRequest": _medication, "AllergyIntolerance": _allergy, "QuestionnaireResponse": _questionnaire_response}


# --- merging ----------------------------------------------------------------------------
def _merge(spec: ProtocolSpec, found: _Collected) -> tuple[dict[str, Any], list[Source]]:
    flat: dict[str, Any] = {}
    sources: list[Source] = []
    for name, candidates in found.values.items():
        distinct = {repr(v): v for v, _ in candidates}
        if len(distinct) > 1:
            said = "; ".join(f"{v!r} ({s.describe()})" for v, s in candidates)
            # Named at the coded resource when there is one: that is what the record system holds.
            at = next((src for _, src in candidates if not src.resource.startswith("QuestionnaireResponse/")), candidates[0][1])
            found.errors.append(FieldError(f"{at.resource}.{at.path}", f"{name}: the Bundle disagrees with itself: {said}", "contradiction"))
            continue
        flat[name] = candidates[0][0]
        sources += [s for _, s in candidates]
    for name in (spec.fhir.medications, spec.fhir.allergies):
        if name:
            found.lists.setdefault(name, [])  # the record's lists, empty when it holds none (as a JSON patient's default)
    for name, entries in found.lists.items():
        kept: list[str] = []
        for text, source in entries:
            twin = _same_medication(spec, text, kept)
            if twin is not None:
                found.skip(source.resource, f"{text!r} is {twin!r} again (already listed from another resource)")
                continue
            sources.append(Source(f"{name}[{len(kept)}]", source.resource, source.path, source.note))
            kept.append(text)
        flat[name] = kept
    sex = flat.get(spec.fhir.sex)
    for name, value in spec.fhir.by_sex.get(str(sex), {}).items():
        if name not in flat:
            flat[name] = value
            sources.append(Source(name, "Patient", "gender", f"{value}: follows from sex {sex}"))
    for d in spec.fhir.derived:
        if d.field not in flat and any(f in flat for f in d.when_present):
            flat[d.field] = d.value
            sources.append(Source(d.field, "(derived)", "+".join(f for f in d.when_present if f in flat), d.source))
    return _nest(flat), sources


def _same_medication(spec: ProtocolSpec, text: str, kept: list[str]) -> str | None:
    """An entry already kept that names exactly the same recognised drugs (a statement and a
    request of one medication), so one medicine is not reported as a duplicate of itself."""
    if text.lower() in (k.lower() for k in kept):
        return next(k for k in kept if k.lower() == text.lower())
    match = spec.formulary.match(text)
    if not match.recognized or not match.drugs:
        return None
    return next((k for k in kept if spec.formulary.match(k).recognized and spec.formulary.match(k).drugs == match.drugs), None)


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        node = out
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out
