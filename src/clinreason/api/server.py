"""How `clinreason serve` runs uvicorn: HTTP protocols that cap the size of a request head.

uvicorn's h11 protocol caps the head with `h11_max_incomplete_event_size` but
answers 400; its httptools protocol (the default whenever httptools is
installed) has no cap at all, and buffers a header however large (a 50 MB
`Authorization` header was read for 16 s before the app saw the request). The
protocols here count the bytes of each request head as they arrive and, past
the limit, answer 431 (problem+json) and close the connection without
parsing the rest.

The limit travels in uvicorn's own `h11_max_incomplete_event_size` option (set
from `Settings.max_header_bytes` by `clinreason serve`), so it reaches every
worker process with the rest of uvicorn's configuration.

The app checks the total size of the headers too (`HeaderLimit` in
headers.py), for servers run some other way (`uvicorn --factory ...`); that
check comes only after the server has read the whole head.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger("uvicorn.error")

DRAIN_SECONDS = 2.0  # after the 431, how long the rest of the client's head is read (and dropped) before closing
DRAIN_BYTES = 128 * 1024 * 1024  # and how much of it at most
_HEAD_ENDS = (b"\r\n\r\n", b"\n\n")


def _answer_431(limit: int) -> bytes:
    body = json.dumps({"type": "urn:clinreason:problem:headers-too-large", "title": "Request header fields too large",
                       "status": 431, "detail": f"the request line and headers are over {limit} bytes"}).encode()
    head = (b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/problem+json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n")
    return head + body


class _HeadLimit:
    """Mixin: refuse a request head over `config.h11_max_incomplete_event_size` bytes with 431.

    After the answer the connection is half-closed and what the client is still
    sending is read and dropped for a moment (never parsed or kept), so the
    client, still writing its head, reads the 431 instead of a reset."""

    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    config: Any
    _refused: bool = False
    _drained: int = 0

    def _init_head_limit(self) -> None:
        self.head_limit: int = self.config.h11_max_incomplete_event_size or 16384
        self._refused = False
        self._drained = 0

    def _refuse_head(self) -> None:
        self._refused = True
        client = getattr(self, "client", None)
        logger.warning("%s - request head over %d bytes: answered 431", "%s:%d" % client if client else "?", self.head_limit)
        self._unset_keepalive_if_required()  # type: ignore[attr-defined]
        self.transport.write(_answer_431(self.head_limit))
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(DRAIN_SECONDS, self.transport.close)
        else:  # TLS: no half-close
            self.transport.close()

    def _drain(self, data: bytes) -> None:
        self._drained += len(data)
        if self._drained > DRAIN_BYTES:
            self.transport.close()


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is not installed: h11 is the only protocol
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

if HttpToolsProtocol is not None:

    class HeadLimitedHttpTools(_HeadLimit, HttpToolsProtocol):  # type: ignore[misc,valid-type]
        """httptools, counting the bytes of each head before they reach the parser."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._init_head_limit()
            self._in_head = True  # between the end of one message and the end of the next head
            self._head_bytes = 0
            self._tail = b""  # the last bytes seen, for a head end split across reads

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return self._drain(data)
            if self._in_head:
                room = self.head_limit - self._head_bytes
                if len(data) > room:
                    window = self._tail + data[: max(room, 0) + 4]
                    if not any(end in window for end in _HEAD_ENDS):
                        return self._refuse_head()
                self._head_bytes += len(data)
                self._tail = (self._tail + data)[-3:]
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._in_head, self._head_bytes, self._tail = False, 0, b""
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._in_head, self._head_bytes, self._tail = True, 0, b""
            super().on_message_complete()


class HeadLimitedH11(_HeadLimit, H11Protocol):
    """h11, whose own limit (`max_incomplete_event_size`) is answered 431 rather than 400."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_head_limit()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return self._drain(data)
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        if len(self.conn.trailing_data[0]) > self.head_limit:  # h11's "Receive buffer too long"
            return self._refuse_head()
        super().send_400_response(msg)


def uvicorn_options(max_header_bytes: int) -> dict[str, Any]:
    """The uvicorn.run options that cap request heads at `max_header_bytes` (431 past it)."""
    protocol = "HeadLimitedHttpTools" if HttpToolsProtocol is not None else "HeadLimitedH11"
    return {"http": f"{__name__}:{protocol}", "h11_max_incomplete_event_size": max_header_bytes}
