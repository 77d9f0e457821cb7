"""The canonical JSON of a validated request: the bytes its input hash is taken over.

The form is `json.dumps(data, sort_keys=True, separators=(",", ":"))` (ASCII only, Python's float
repr), fixed since the first stored assessment: changing a byte would change every input hash.
orjson writes the same bytes about ten times faster for what a validated patient holds, so it
writes them when it provably agrees, and the standard library writes the rest:

- text that is not ASCII, or holds the DEL character (the standard library escapes both, orjson
  writes them as they are);
- a float below 1e-4 (the standard library writes 1e-05, orjson 0.00001);
- an integer past 64 bits, or a type orjson does not know (it raises).

A non-finite float is the one case the bytes cannot show (orjson writes null, the standard library
NaN or Infinity): every protocol's input model refuses one (tests/protocols/test_canonical.py).
orjson is a dependency of LangGraph's tracing client already; it is declared for this use.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# Bytes after which orjson's output may differ: DEL, and the two forms of a float below 1e-4 (text that
# happens to contain one is written by the standard library too, which is only slower).
_DEL, _EXPONENT, _ZEROS = b"\x7f", b"e-", b"0.0000"


def canonical_json(data: Any) -> bytes:
    """`json.dumps(data, sort_keys=True, separators=(",", ":")).encode()`, for JSON data with no
    NaN or infinity."""
    try:
        out = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        out = b""
    if out and out.isascii() and _DEL not in out and _EXPONENT not in out and _ZEROS not in out:
        return out
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
