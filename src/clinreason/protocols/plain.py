"""Plain clinical wording for the report: what a clinician reads instead of field names and codes.

The protocol result keeps machine-readable details ("symptoms.dysuria = true", "sex = male") for
the JSON and the audit; the report turns them into words ("dysuria reported", "sex: male") with
the protocol's labels for fields whose names do not read well (`Wording.field_labels`).
"""

from __future__ import annotations

import re

from clinreason.protocols.result import RegimenSpec

ROUTES = {"PO": "by mouth", "IV": "intravenously", "IM": "intramuscularly", "SC": "subcutaneously", "SL": "under the tongue"}
FREQUENCIES = {"BID": "twice daily", "TID": "three times daily", "QID": "four times daily", "QD": "once daily",
               "OD": "once daily", "QHS": "at bedtime", "Q12H": "every 12 hours", "Q8H": "every 8 hours"}
URGENCY = {
    "emergency_or_same_day": "the same day: a physician or nurse practitioner today, or urgent care or an emergency department if none can see them today",
    "within_24_48h": "within 24 to 48 hours: a physician or nurse practitioner",
    "routine": "at a routine appointment with their primary care provider",
    "none": "no referral",
}
STATUS = {"awaiting_signoff": "awaiting prescriber sign-off", "final": "final"}

# "history.g6pd_deficiency = true", "sex = male", "red_flags.fever = true", "renal_function_summary = impaired".
# The first part, snake-case words, is written without a nested quantifier: `(?:[a-z][a-z0-9]*_?)+`
# (the same language) backtracked exponentially on long words and was most of a report's CPU.
_FIELD = re.compile(r"\b([a-z][a-z0-9]*(?:_[a-z][a-z0-9]*)*_?(?:\.[A-Za-z][A-Za-z0-9_]*)*)\s*=\s*([A-Za-z0-9_.\-]+)")


def field_label(path: str, labels: dict[str, str]) -> str:
    """The words for a field path: the protocol's label, else its last part with spaces."""
    name = path.rsplit(".", 1)[-1]
    return labels.get(path) or labels.get(name) or name.replace("_", " ")


_ENTRY = re.compile(r"\b((?:[a-z_]+\.)*([a-z_]+))\[(\d+)\]")  # "history.meds[0]"
_SNAKE = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+\b")  # "suprapubic_pain", "tmp_smx"


def detail(text: str, labels: dict[str, str], names: dict[str, str] | None = None) -> str:
    """A rule's detail in words: `field = true` -> "<label> reported", `field = value` -> "<label>: value",
    `list[0]` -> "<label> entry 1"; option ids (`names`: id -> name) and other field names as words."""
    def words(m: re.Match[str]) -> str:
        label, value = field_label(m.group(1), labels), m.group(2)
        if value == "true":
            return f"{label} reported"
        if value == "false":
            return f"no {label}"
        return f"{label}: {(names or {}).get(value, value.replace('_', ' '))}"

    text = _FIELD.sub(words, text)
    text = _ENTRY.sub(lambda m: f"{field_label(m.group(1), labels)} entry {int(m.group(3)) + 1}", text)
    return _SNAKE.sub(lambda m: (names or {}).get(m.group(0)) or field_label(m.group(0), labels), text)


def regimen(r: RegimenSpec) -> str:
    """"fosfomycin trometamol 3 g by mouth, as a single dose"; "nitrofurantoin 100 mg by mouth twice daily for 5 days"."""
    route = ROUTES.get(r.route.upper(), r.route)
    duration = r.duration.strip()
    if duration.lower().startswith("single"):
        return f"{r.drug} {r.dose} {route}, as a {duration}"
    return f"{r.drug} {r.dose} {route} {FREQUENCIES.get(r.frequency.upper(), r.frequency)} for {duration}"


def sentence(text: str) -> str:
    """Capitalised, ending with a full stop."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def restates(detail_words: str, title: str) -> bool:
    """Whether a rule's detail only repeats its title ("Red flag: fever" / "fever reported")."""
    core = detail_words.removesuffix(" reported").strip().lower()
    return bool(core) and core in title.lower()


def first_sentence(text: str) -> str:
    """Up to the first full stop that ends a sentence ("CrCl 30 mL/min." ends one; "e.g." and "2.5" do not)."""
    m = re.search(r"(?<![A-Z]\.[a-z])(?<!\d)\.(?=\s+[A-Z])", text)
    return text[: m.end()] if m else text
