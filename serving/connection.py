"""Bounds on what one HTTP connection may hold of the server's time and memory.

uvicorn only times idle keep-alive connections: a client that connects and stalls, sends its
body a byte a second, or never reads its answer is otherwise kept forever, with the answer in
memory. ``LimitedHttpProtocol`` is uvicorn's httptools protocol (``uvicorn.Config.http``) with:

- a request's headers within ``header_timeout`` seconds and ``MAX_HEADER_BYTES``, else the
  connection is closed (or answered 400);
- its body within ``body_timeout`` seconds of its headers, else 408 and the connection closed;
- answers a client does not read: uvicorn writes the next answer of a connection only once the
  last one has drained, so a connection buffers at most one; one that has not drained within
  ``write_timeout`` seconds, or that would take the buffered output of all connections past
  ``OutputBudget.limit`` bytes, is dropped (``abort``: its buffer is freed at once).

Deadlines are armed only while something is awaited, so the common request costs no timer.

At shutdown (SIGTERM, after the pod's preStop), uvicorn closes idle keep-alive connections at
once, under a client that may already be sending its next request on one (it then sees the
connection drop without an answer). Here an idle connection stays open for
``SHUTDOWN_GRACE_S``: a request that arrives meanwhile is answered, with ``Connection:
close``, and the client opens its next connection elsewhere.
"""

from __future__ import annotations

import asyncio
import functools
from http import HTTPStatus
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from symptom_dx.contract import (
    BODY_TIMEOUT_S,
    HEADER_TIMEOUT_S,
    MAX_BUFFERED_OUTPUT_BYTES,
    MAX_HEADER_BYTES,
    WRITE_TIMEOUT_S,
)

SHUTDOWN_GRACE_S = 1.0


class OutputBudget:
    """Bytes of answers waiting for slow readers, over all connections of one server."""

    def __init__(self, limit: int = MAX_BUFFERED_OUTPUT_BYTES):
        self.limit = limit
        self.used = 0


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol with the bounds of this module's docstring."""

    def __init__(
        self,
        *args: Any,
        header_timeout: float = HEADER_TIMEOUT_S,
        body_timeout: float = BODY_TIMEOUT_S,
        write_timeout: float = WRITE_TIMEOUT_S,
        output_budget: OutputBudget | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.write_timeout = write_timeout
        self.output_budget = output_budget or OutputBudget()
        self._awaiting_headers = True
        self._awaiting_body = False
        self._header_bytes = 0
        self._request_deadline: asyncio.TimerHandle | None = None  # headers, then body
        self._write_deadline: asyncio.TimerHandle | None = None
        self._buffered = 0  # of the output budget, while writing is paused
        self._shutting_down = False

    # -- reading ---------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_request(self.header_timeout, self.transport.close)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting_headers = True

    def data_received(self, data: bytes) -> None:
        header_data = self._awaiting_headers  # this read continues a request's headers
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._awaiting_headers:
            self._header_bytes += len(data) if header_data else 0
            if self._header_bytes > MAX_HEADER_BYTES:
                self.send_400_response("Request headers too large.")
            elif self._request_deadline is None:
                self._arm_request(self.header_timeout, self.transport.close)
        elif self._awaiting_body and self._request_deadline is None:
            self._arm_request(self.body_timeout, self._body_too_slow)

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._awaiting_body = True
        self._header_bytes = 0
        self._disarm_request()
        super().on_headers_complete()
        if self._shutting_down and self.cycle is not None:
            self.cycle.keep_alive = False  # answered, then closed

    def on_message_complete(self) -> None:
        self._awaiting_body = False
        self._disarm_request()
        super().on_message_complete()

    def _body_too_slow(self) -> None:
        self._request_deadline = None
        if self.cycle is not None and not self.cycle.response_started:
            message = f"request body not received within {self.body_timeout:g} s"
            self.transport.write(_raw_response(HTTPStatus.REQUEST_TIMEOUT, message, self))
        self.transport.close()

    # -- writing ---------------------------------------------------------------------------------
    def pause_writing(self) -> None:
        super().pause_writing()
        self._buffered = self.transport.get_write_buffer_size()
        budget = self.output_budget
        budget.used += self._buffered
        if budget.used > budget.limit:
            self._drop()
        elif self._write_deadline is None:
            self._write_deadline = self.loop.call_later(self.write_timeout, self._drop)

    def resume_writing(self) -> None:
        self._release_output()
        super().resume_writing()

    def _drop(self) -> None:
        """A client that does not read its answer: the connection goes, and its buffer."""
        self._release_output()
        self.transport.abort()

    def _release_output(self) -> None:
        self.output_budget.used -= self._buffered
        self._buffered = 0
        if self._write_deadline is not None:
            self._write_deadline.cancel()
            self._write_deadline = None

    # -- shutdown --------------------------------------------------------------------------------
    def shutdown(self) -> None:
        if self.cycle is not None and not self.cycle.response_complete:
            super().shutdown()  # a request in flight: answered, then closed
            return
        self._shutting_down = True
        self.loop.call_later(SHUTDOWN_GRACE_S, self._close_if_idle)

    def _close_if_idle(self) -> None:
        if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
            self.transport.close()

    # -- both ------------------------------------------------------------------------------------
    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_request()
        self._release_output()
        super().connection_lost(exc)

    def _arm_request(self, seconds: float, callback: Any) -> None:
        self._request_deadline = self.loop.call_later(seconds, callback)

    def _disarm_request(self) -> None:
        if self._request_deadline is not None:
            self._request_deadline.cancel()
            self._request_deadline = None


def limited_http_protocol(
    header_timeout: float = HEADER_TIMEOUT_S,
    body_timeout: float = BODY_TIMEOUT_S,
    write_timeout: float = WRITE_TIMEOUT_S,
    max_buffered_output: int = MAX_BUFFERED_OUTPUT_BYTES,
) -> functools.partial:
    """What ``uvicorn.Config.http`` takes: the protocol with these bounds, one output budget
    shared by all its connections."""
    return functools.partial(
        LimitedHttpProtocol,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        write_timeout=write_timeout,
        output_budget=OutputBudget(max_buffered_output),
    )


def _raw_response(status: HTTPStatus, message: str, protocol: HttpToolsProtocol) -> bytes:
    """A whole JSON error answer that closes the connection, written outside any ASGI cycle
    (as uvicorn's own ``send_400_response``)."""
    body = orjson.dumps({"error": message})
    lines = [f"HTTP/1.1 {status.value} {status.phrase}".encode()]
    lines += [name + b": " + value for name, value in protocol.server_state.default_headers]
    lines += [
        b"content-type: application/json",
        b"content-length: %d" % len(body),
        b"connection: close",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
