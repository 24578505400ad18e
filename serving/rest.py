"""The REST port's ASGI app: the JSON fast path (``serving.fast_path``) for plain v2 infer
requests, KServe's FastAPI app for everything else, both behind the body limit and answering
every error as ``serving.errors`` maps it (KServe's handlers log each request error with its
text, which names symptoms, and a traceback; these log the reason code only)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from kserve.errors import InferenceError
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from serving.errors import MAPPED_ERRORS, error_body
from serving.fast_path import JSON_HEADERS, FastPath
from serving.model import DiseaseClassifier
from serving.protocol import RequestRejected
from symptom_dx.contract import MAX_BODY_BYTES


class RESTApp:
    """The REST port's ASGI app: the fast path (if on), else KServe's FastAPI app with our
    error handlers and body limit (set at the first call, once KServe has built the app)."""

    def __init__(
        self, app: FastAPI, models: Iterable[DiseaseClassifier], fast_path: bool = True
    ) -> None:
        models = list(models)
        self.app = app
        self.models = {m.name: m for m in models}
        self.fast = FastPath(models) if fast_path else None
        self._configured = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._configured:
            self._configure()
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if _declared_length(scope) > MAX_BODY_BYTES:
            self._count_too_large(scope["path"])
            return await _send_json(send, *error_body(HTTPException(413)))
        model = self.fast.model_for(scope) if self.fast else None
        if model is None:
            return await self.app(scope, receive, send)
        try:
            body = await _read_body(receive, MAX_BODY_BYTES)
            if body is None:  # the client went away
                return
            status, payload = await self.fast.answer(model, body)
        except HTTPException as e:  # the body passed the limit
            self._count_too_large(scope["path"])
            status, payload = error_body(e)
        except Exception as e:  # a bug: 500 without its text
            status, payload = error_body(e)
        await _send_json(send, status, payload)

    def _configure(self) -> None:
        self._configured = True
        if getattr(self.app.state, "serving_configured", False):  # by another RESTApp
            return
        if self.app.middleware_stack is not None:
            raise RuntimeError("KServe's app already answered requests with its own handlers")
        self.app.state.serving_configured = True
        self.app.max_body_size = MAX_BODY_BYTES
        # KServe registers its own handlers for these (and InferenceError): ours replace them
        for error in (Exception, InferenceError, *MAPPED_ERRORS):
            self.app.add_exception_handler(error, self._on_error)
        self.app.add_exception_handler(RequestValidationError, self._on_validation_error)

    def _count_too_large(self, path: str) -> None:
        if model := self.models.get(_served_name(path)):
            model.reject(RequestRejected("body_too_large", "request body too large"))

    async def _on_error(self, request: Request, error: Exception) -> Response:
        if isinstance(error, HTTPException) and error.status_code == 413:
            self._count_too_large(request.url.path)
        elif isinstance(error, RequestRejected) and (model := self._model_of(request)):
            model.reject(error)
        status, payload = error_body(error)
        return Response(payload, status_code=status, media_type="application/json")

    async def _on_validation_error(
        self, request: Request, error: RequestValidationError
    ) -> Response:
        """A body that is not a v2 request (FastAPI's 422): 400 as the fast path says it."""
        model = self._model_of(request)
        body = error.body
        if model is not None:
            try:
                model.decode_json(_as_json_bytes(body))
            except RequestRejected as e:
                return await self._on_error(request, e)
        fields = "; ".join(".".join(map(str, e.get("loc", ()))) for e in error.errors())
        rejected = RequestRejected("malformed_json", f"malformed request: check {fields}")
        return await self._on_error(request, rejected)

    def _model_of(self, request: Request) -> DiseaseClassifier | None:
        return self.models.get(request.path_params.get("model_name", ""))


def _as_json_bytes(body: Any) -> bytes:
    """The body FastAPI failed to validate (raw text, or the JSON value it parsed) as JSON."""
    if isinstance(body, bytes | str):
        return body.encode() if isinstance(body, str) else body
    try:
        return orjson.dumps(body)
    except TypeError:
        return b""


_MODEL_ROUTE = re.compile(r"/v2/models/([^/]+)/infer|/v1/models/([^/:]+):predict")


def _served_name(path: str) -> str:
    """The model name in an infer or predict path ("" for any other path)."""
    match = _MODEL_ROUTE.fullmatch(path)
    return (match.group(1) or match.group(2)) if match else ""


def _declared_length(scope: Scope) -> int:
    for key, value in scope["headers"]:
        if key == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None on disconnect; HTTPException 413 past ``limit`` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HTTPException(413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_json(send: Send, status: int, payload: bytes) -> None:
    headers = [*JSON_HEADERS, (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
