"""Prefetch: the values the EHR sent for each template, completed from its FHIR server when it gave
one, flattened into one `collection` Bundle for the FHIR intake.

The spec's rules: a key the client did not send was not satisfied; a `null` value means there is
no data; an OperationOutcome means the client failed to fetch it. What is not satisfied is fetched
from `fhirServer` (with the `fhirAuthorization` token when given); without a server, or when the
server fails, the answer is 412. A searchset with a `next` page is followed the same way.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import urljoin

import httpx

from clinreason.cds_hooks.models import HookRequest

MAX_PAGES = 10
_TOKEN = re.compile(r"\{\{\s*context\.([A-Za-z0-9_]+)\s*\}\}")


class PrefetchFailed(Exception):
    """The data a template asks for could not be obtained (the 412's detail); `keys` names the templates."""

    def __init__(self, message: str, keys: list[str]):
        super().__init__(message)
        self.keys = keys


def render(template: str, context: dict[str, Any]) -> str:
    def token(m: re.Match[str]) -> str:
        value = context.get(m.group(1))
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise PrefetchFailed(f"the template needs context.{m.group(1)}", [])
        return str(value)
    return _TOKEN.sub(token, template)


def _next_page(value: dict[str, Any]) -> str | None:
    if value.get("resourceType") != "Bundle":
        return None
    return next((link.get("url") for link in value.get("link") or [] if link.get("relation") == "next" and link.get("url")), None)


def _unsatisfied(value: Any) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"


async def complete(request: HookRequest, templates: dict[str, str], timeout: float, allowed_servers: list[str]) -> dict[str, Any]:
    """key -> the data of each template (a resource, a searchset Bundle, or None for no data)."""
    given = dict(request.prefetch or {})
    missing = [k for k in templates if k not in given or _unsatisfied(given[k])]
    paged = [k for k in templates if k not in missing and isinstance(given[k], dict) and _next_page(given[k])]
    if not (missing or paged):
        return given
    if request.fhirServer is None:
        raise PrefetchFailed("prefetch " + ", ".join(missing or paged) + (" not sent" if missing else " has more pages") +
                             ", and the request gives no fhirServer to fetch it from", missing or paged)
    if allowed_servers and not any(request.fhirServer.startswith(prefix) for prefix in allowed_servers):
        raise PrefetchFailed(f"fhirServer {request.fhirServer[:200]!r} is not one this client may name", missing or paged)
    base = request.fhirServer.rstrip("/") + "/"
    headers = {"Accept": "application/fhir+json"}
    if request.fhirAuthorization is not None:
        headers["Authorization"] = f"Bearer {request.fhirAuthorization.access_token}"
    async with httpx.AsyncClient(timeout=timeout, headers=headers, follow_redirects=False) as client:
        async def one(key: str) -> tuple[str, Any]:
            first = given[key] if key in paged else await _get(client, urljoin(base, render(templates[key], request.context)), key)
            return key, await _rest(client, first, key, base)
        try:
            fetched = dict(await asyncio.wait_for(asyncio.gather(*(one(k) for k in [*missing, *paged])), timeout * 2))
        except TimeoutError:
            raise PrefetchFailed(f"the FHIR server did not answer within {timeout * 2:.1f} s", missing or paged) from None
    return {**given, **fetched}


async def _get(client: httpx.AsyncClient, url: str, key: str) -> Any:
    try:
        response = await client.get(url)
    except httpx.HTTPError as exc:
        raise PrefetchFailed(f"prefetch {key}: the FHIR server could not be reached ({type(exc).__name__})", [key]) from None
    if response.status_code == 404 and "?" not in url:
        return None  # a read of a resource that does not exist: no data
    if response.status_code != 200:
        raise PrefetchFailed(f"prefetch {key}: the FHIR server answered {response.status_code}", [key])
    try:
        data = response.json()
    except ValueError:
        raise PrefetchFailed(f"prefetch {key}: the FHIR server's answer is not JSON", [key]) from None
    if not isinstance(data, dict) or _unsatisfied(data):
        raise PrefetchFailed(f"prefetch {key}: the FHIR server answered with no resource", [key])
    return data


async def _rest(client: httpx.AsyncClient, first: Any, key: str, base: str) -> Any:
    """A searchset with every page's entries (the next links must stay on the same server)."""
    if not isinstance(first, dict):
        return first
    entries, page, pages = list(first.get("entry") or []), first, 1
    while (url := _next_page(page)) is not None:
        if pages >= MAX_PAGES or not urljoin(base, url).startswith(base):
            raise PrefetchFailed(f"prefetch {key}: more than {MAX_PAGES} pages, or a page on another server", [key])
        page = await _get(client, urljoin(base, url), key)
        entries += page.get("entry") or []
        pages += 1
    return {**first, "entry": entries, "link": [link for link in first.get("link") or [] if link.get("relation") != "next"]}


def collection(prefetch: dict[str, Any]) -> dict[str, Any]:
    """One collection Bundle of every resource in the prefetch values (duplicates once)."""
    seen: set[str] = set()
    entries: list[dict[str, Any]] = []

    def add(resource: Any) -> None:
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            return
        if resource["resourceType"] == "Bundle":
            for entry in resource.get("entry") or []:
                if isinstance(entry, dict) and (entry.get("search") or {}).get("mode") != "outcome":
                    add(entry.get("resource"))
            return
        if resource["resourceType"] == "OperationOutcome":
            return
        key = f"{resource['resourceType']}/{resource.get('id') or len(entries)}"
        if key not in seen:
            seen.add(key)
            entries.append({"resource": resource})

    for value in prefetch.values():
        add(value)
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}
