"""UCUM quantities -> the unit an input field is kept in. A unit not listed is refused, never assumed."""

from __future__ import annotations

from clinreason.fhir.codes import UCUM

# unit kept -> {UCUM code or common printed form: factor to it}. Sources: UCUM 2.1 (ucum.org) for the
# codes; 1 [lb_av] = 0.45359237 kg (international avoirdupois pound, UCUM); eGFR is reported per
# 1.73 m2 and creatinine clearance without it, both read as mL/min by the protocols' rules.
CONVERSIONS: dict[str, dict[str, float]] = {
    "mL/min": {"mL/min": 1.0, "ml/min": 1.0, "mL/min/{1.73_m2}": 1.0, "mL/min/1.73m2": 1.0, "mL/min/1.73 m2": 1.0,
               "mL/min/1.73.m2": 1.0, "L/h": 1000 / 60, "mL/s": 60.0},
    "kg": {"kg": 1.0, "g": 0.001, "[lb_av]": 0.45359237, "lb": 0.45359237, "lbs": 0.45359237},
}


def convert(quantity: dict[str, object], unit: str) -> float:
    """The quantity's value in `unit`. ValueError (its message names the problem) when it has no value,
    carries a comparator, or its unit is not one we convert."""
    value = quantity.get("value")
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError("the Quantity has no numeric value")
    if quantity.get("comparator"):
        # "<30" or ">60" is a bound, not a measurement: the protocols' thresholds need the number.
        raise ValueError(f"the value is a bound ({quantity['comparator']}{value:g}), not a measured value")
    table = CONVERSIONS[unit]
    code = quantity.get("code") if quantity.get("system") == UCUM else None
    printed = quantity.get("unit")
    for given in (code, printed):
        if isinstance(given, str) and given in table:
            return round(float(value) * table[given], 2)
    shown = code or printed or "no unit"
    raise ValueError(f"unit {shown!r} cannot be read as {unit} (accepted: {', '.join(sorted(table))})")
