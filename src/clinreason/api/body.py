"""Strict JSON request bodies: the one parser every JSON body of the API goes through.

`json.loads` alone accepts things that must not reach the pipeline, and fails on
others in ways that became 500s:

- duplicate keys are last-wins (`{"action": "reject", "action": "approve"}`
  approved): refused, naming the key and where it is;
- `NaN`, `Infinity` and `-Infinity` are not JSON (RFC 8259), nor are numbers
  that overflow a float (`1e400` would become infinity): refused;
- an integer of thousands of digits raised ValueError (Python's int-string
  limit, 4300 digits): integers are capped at `MAX_INT_DIGITS` digits;
- deep nesting raised RecursionError: the depth is measured by a scan of the
  brackets outside strings *before* parsing, so the parser never recurses
  deeper than `MAX_DEPTH`;
- an unpaired UTF-16 surrogate escape (`"\\ud800"`) is not text and failed
  later, when the value was encoded: refused, naming the field.

JSON has a single number type, so a number with no fraction (`101.0`, `1e2`)
is read as an integer, as JSON Schema counts it; `30.5` stays a float.

Every refusal is a 400 problem (`malformed-json`) with `errors: [{field,
message}]`, fields spelt as in 422 errors (`red_flags.fever`, `history.meds[2]`,
`(root)`). A body that is not declared as JSON is 415. The size of a body is
capped before it gets here (413, `BodyLimit` in middleware.py).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from itertools import accumulate
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from clinreason.api.problems import ApiError

MAX_DEPTH = 64  # arrays and objects nested deeper than this are refused (the patient schema needs 3)
MAX_INT_DIGITS = 100  # far beyond any field; below Python's 4300-digit int-string limit
MAX_ERRORS = 20  # problems listed in one answer

MALFORMED = "malformed-json"
UNSUPPORTED = "unsupported-media-type"

# A JSON string (also an unterminated one, to the end of the text), or a bracket.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\Z)|[\[\]{}]', re.DOTALL)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class _Refused:
    """Put in the parsed document where a value was refused; found (with its path) by `_problems`."""

    __slots__ = ("message",)

    def __init__(self, message: str):
        self.message = message


class _DuplicateKeys(dict):  # type: ignore[type-arg]
    """An object that had a key more than once (the keys, in order of their second appearance)."""

    __slots__ = ("duplicates",)


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent if parent != '(root)' else ''}[{key}]"
    return key if parent == "(root)" else f"{parent}.{key}"


def _describe(key: str) -> str:
    return json.dumps(key, ensure_ascii=True)


def max_depth(text: str) -> int:
    """How deeply arrays and objects nest in `text`, counting brackets outside strings only."""
    brackets = [1 if t in "[{" else -1 for t in _TOKENS.findall(text) if len(t) == 1 and t in "[]{}"]
    return max(accumulate(brackets), default=0)


def parse_json(raw: bytes | str) -> Any:
    """Parse a request body strictly; refuse with a 400 problem (see the module docstring)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise _malformed(f"the body is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    depth = max_depth(text)
    if depth > MAX_DEPTH:
        raise _malformed(f"the body nests arrays and objects {depth} deep; at most {MAX_DEPTH} levels are accepted",
                         [{"field": "(root)", "message": f"nested {depth} levels deep (limit {MAX_DEPTH})"}])
    flagged = False

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal flagged
        obj = dict(pairs)
        if len(obj) == len(pairs):
            return obj
        flagged = True
        seen: set[str] = set()
        repeated: dict[str, None] = {}
        for k, _ in pairs:
            if k in seen:
                repeated[k] = None
            seen.add(k)
        marked = _DuplicateKeys(obj)
        marked.duplicates = list(repeated)
        return marked

    def refuse(message: str) -> _Refused:
        nonlocal flagged
        flagged = True
        return _Refused(message)

    def parse_int(s: str) -> int | _Refused:
        digits = len(s) - s.startswith("-")
        if digits > MAX_INT_DIGITS:
            return refuse(f"an integer of {digits} digits; at most {MAX_INT_DIGITS} are accepted")
        return int(s)

    def parse_float(s: str) -> float | int | _Refused:
        value = float(s)
        if not math.isfinite(value):
            return refuse(f"the number {s[:40]}{'...' if len(s) > 40 else ''} is out of range")
        # JSON has one number type: 101.0 is the integer 101 (as JSON Schema says), so it reads as one.
        # (Float fields accept integers; a fraction stays a float, and an integer field refuses it.)
        if value.is_integer() and abs(value) <= 2**53:  # beyond 2**53 a float is no exact integer
            return int(value)
        return value

    def parse_constant(name: str) -> _Refused:
        return refuse(f"{name} is not JSON: JSON has no NaN or Infinity (send null or leave the field out)")

    try:
        value = json.loads(text, object_pairs_hook=pairs_hook, parse_int=parse_int, parse_float=parse_float,
                           parse_constant=parse_constant)
    except json.JSONDecodeError as exc:
        raise _malformed(f"the body is not valid JSON: {exc}") from None
    except RecursionError:  # not reachable after the depth check; never a 500 if it were
        raise _malformed(f"the body nests too deeply; at most {MAX_DEPTH} levels are accepted") from None
    if flagged or _SURROGATE_ESCAPE.search(text):
        errors = _problems(value)
        if errors:
            first = errors[0]
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise _malformed(f"{first['message']}, at {first['field']}{more}", errors)
    return value


def _problems(value: Any) -> list[dict[str, str]]:
    """Each refused value in the document, with its path, in document order (at most MAX_ERRORS)."""
    out: list[dict[str, str]] = []
    stack: list[tuple[str, Any]] = [("(root)", value)]
    while stack and len(out) < MAX_ERRORS:
        path, node = stack.pop()
        if isinstance(node, _Refused):
            out.append({"field": path, "message": node.message})
        elif isinstance(node, str):
            if _lone_surrogate(node):
                out.append({"field": path, "message": "the text has an unpaired UTF-16 surrogate escape (\\ud800-\\udfff alone)"})
        elif isinstance(node, dict):
            for key in getattr(node, "duplicates", ()):
                out.append({"field": _path(path, key), "message": f"duplicate key {_describe(key)}: a key may appear only once in an object"})
            for key in node:
                if _lone_surrogate(key):
                    out.append({"field": path, "message": f"the key {_describe(key)} has an unpaired UTF-16 surrogate escape"})
            stack.extend((_path(path, k), v) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((_path(path, i), v) for i, v in reversed(list(enumerate(node))))
    return out[:MAX_ERRORS]


def _lone_surrogate(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _malformed(detail: str, errors: list[dict[str, str]] | None = None) -> ApiError:
    return ApiError(400, "Malformed request", detail, MALFORMED, errors=errors)


def is_json_media_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def check_content_type(headers: Any) -> None:
    """415 unless the body is declared as JSON (application/json or application/*+json), UTF-8, uncompressed."""
    content_type = headers.get("content-type")
    if content_type is None:
        raise ApiError(415, "Unsupported media type", "send the body as JSON, with Content-Type: application/json", UNSUPPORTED,
                       headers={"Accept-Post": "application/json"})
    if not is_json_media_type(content_type):
        raise ApiError(415, "Unsupported media type",
                       f"the body is declared as {content_type.split(';', 1)[0].strip()[:80]!r}; send it as application/json",
                       UNSUPPORTED, headers={"Accept-Post": "application/json"})
    for param in content_type.split(";")[1:]:
        name, _, val = param.partition("=")
        if name.strip().lower() == "charset" and val.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise ApiError(415, "Unsupported media type",
                           f"JSON bodies are UTF-8: charset {val.strip()[:40]!r} is not accepted; send application/json (charset=utf-8 or none)",
                           UNSUPPORTED, headers={"Accept-Post": "application/json"})
    coding = headers.get("content-encoding", "identity").strip().lower()
    if coding not in ("", "identity"):
        raise ApiError(415, "Unsupported content coding", f"Content-Encoding {coding[:40]!r} is not accepted; send the body uncompressed",
                       UNSUPPORTED, headers={"Accept-Encoding": "identity"})


async def read_json(request: Request, expecting: str = "a JSON object") -> Any:
    """The request's body, declared as JSON and parsed strictly. Call only after authenticating."""
    if request.headers.get("content-type") is not None:
        check_content_type(request.headers)  # refuse before reading a body that will not be used
    raw = await request.body()
    if not raw.strip():
        raise _malformed(f"the body is empty; it must be {expecting}")
    check_content_type(request.headers)  # a body without a Content-Type is not declared as JSON
    return parse_json(raw)


def validated(model: type[BaseModel], data: Any) -> BaseModel:
    """`data` as `model`, or a RequestValidationError (the app's 422 with one error per field)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]) from None


def json_body(model: type[BaseModel], expecting: str = "a JSON object") -> Callable[..., Any]:
    """A FastAPI dependency: the body, parsed strictly, then validated as `model`.

    Declare it after the authentication dependency, so a hostile body from an
    unauthenticated client is never parsed."""

    async def dependency(request: Request) -> BaseModel:
        return validated(model, await read_json(request, expecting))

    dependency.__name__ = f"{model.__name__}_body"
    return dependency
