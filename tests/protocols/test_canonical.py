"""The canonical JSON behind every input hash: orjson's fast path writes exactly the standard library's
bytes, and no protocol's input model lets through the one value whose bytes would differ unseen."""

from __future__ import annotations

import json
import math
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from clinreason.errors import InvalidPatient
from clinreason.protocols.canonical import canonical_json
from clinreason.protocols.registry import registry, resolve, samples
from clinreason.samples import load_sample


def _reference(data: object) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
            | st.text() | st.text(alphabet=st.characters(max_codepoint=0x7F)))
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=20)


@settings(max_examples=3000, deadline=None)
@given(_JSON)
def test_same_bytes_as_the_standard_library(data: object) -> None:
    assert canonical_json(data) == _reference(data)


@pytest.mark.parametrize("value", [1e-05, 2.5e-07, 0.0001, 1e16, 123.456, -0.0, 5e-324, 2**64, "\x7f", "café", "\u2028", "pre-existing"])
def test_the_cases_where_orjson_differs(value: object) -> None:
    assert canonical_json({"x": [value]}) == _reference({"x": [value]})


def test_a_sample_hash_is_unchanged() -> None:
    """The hash of a stored assessment's input must not move: the uncomplicated sample's, as first computed."""
    v = resolve(load_sample("uncomplicated"))
    assert canonical_json(v.patient_json) == _reference(v.patient_json)
    assert v.input_hash == __import__("hashlib").sha256(_reference(v.patient_json)).hexdigest()


def _float_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, field in model.model_fields.items():
        for arg in (field.annotation, *typing.get_args(field.annotation)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                out += _float_paths(arg, (*prefix, name))
            elif arg is float or typing.get_origin(arg) is typing.Annotated and typing.get_args(arg)[0] is float:
                out.append((*prefix, name))
    return sorted(set(out))


def _set(data: dict, path: tuple[str, ...], value: float) -> dict:
    copy = json.loads(json.dumps(data))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copy


@pytest.mark.parametrize("protocol", sorted(registry()))
def test_no_input_model_accepts_a_non_finite_float(protocol: str) -> None:
    spec = registry()[protocol]
    paths = _float_paths(spec.input_model)
    assert paths, f"{protocol}: no float field found, so this test checks nothing"
    sample = next(load_sample(name) for name, (owner, _) in samples().items() if owner.id == protocol)
    for path in paths:
        for bad in (math.inf, -math.inf, math.nan):
            with pytest.raises(InvalidPatient):
                resolve(_set(sample, path, bad))
