"""One status for every error, on both protocols: ``error_status`` maps an exception raised
while answering a request to (HTTP status, gRPC code, message).

Bad input is a 400 / INVALID_ARGUMENT with the message, an unknown model 404 / NOT_FOUND, ...
and only a bug is a 500 / INTERNAL, whose body says nothing of the exception (its text may
quote the request): the bug's stack goes to the log, without that text.
"""

from __future__ import annotations

import logging
import traceback

import orjson
from grpc import StatusCode
from kserve.errors import (
    InvalidInput,
    ModelNotFound,
    ModelNotReady,
    ServerNotLive,
    ServerNotReady,
    UnsupportedProtocol,
)
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from symptom_dx.contract import MAX_BODY_BYTES

logger = logging.getLogger("kserve")

INTERNAL_ERROR = "internal server error"
_MAX_MESSAGE_CHARS = 1000  # of an error message from KServe, which may quote the request
SERVED_ROUTES = (
    "this server answers GET /v2/health/live, /v2/health/ready, /v2/models/{name}, "
    "/v2/models/{name}/ready and POST /v2/models/{name}/infer, /v1/models/{name}:predict"
)
# nginx's code for a client that went away before its answer: nobody reads it, nothing is logged
CLIENT_CLOSED = 499


class RepositoryChangesDisabled(Exception):
    """A load or unload through the model repository extension, which is closed."""

    def __str__(self) -> str:
        return (
            "model repository changes are disabled on this server "
            "(start it with --allow_repository_changes true to enable load and unload)"
        )


def error_status(error: BaseException) -> tuple[int, StatusCode, str]:
    """(HTTP status, gRPC code, message) of an error raised while answering a request."""
    message = str(getattr(error, "detail", error))[:_MAX_MESSAGE_CHARS]
    if isinstance(error, InvalidInput):  # RequestRejected and KServe's own
        return 400, StatusCode.INVALID_ARGUMENT, message
    if isinstance(error, ModelNotFound):
        return 404, StatusCode.NOT_FOUND, message
    if isinstance(error, RepositoryChangesDisabled):
        return 403, StatusCode.PERMISSION_DENIED, message
    if isinstance(error, ModelNotReady | ServerNotReady | ServerNotLive):
        return 503, StatusCode.UNAVAILABLE, message
    if isinstance(error, NotImplementedError | UnsupportedProtocol):
        # KServe's routes for what this server does not serve (model versions, :explain): a
        # route that is not here, named with the ones that are
        return 404, StatusCode.UNIMPLEMENTED, f"{message.rstrip('.')}; {SERVED_ROUTES}"
    if isinstance(error, HTTPException):  # 404 for unknown routes, 413 for large bodies, ...
        if error.status_code == 413:
            message = f"request body larger than {MAX_BODY_BYTES} bytes"
        return error.status_code, StatusCode.UNKNOWN, message
    if isinstance(error, ClientDisconnect):  # e.g. dropped for a body that came too slowly
        return CLIENT_CLOSED, StatusCode.CANCELLED, "client disconnected"
    # A bug: its stack goes to the log, its text (which may quote a request) nowhere.
    stack = "".join(traceback.format_list(traceback.extract_tb(error.__traceback__)))
    logger.error("internal error %s, raised at\n%s", type(error).__name__, stack.rstrip())
    return 500, StatusCode.INTERNAL, INTERNAL_ERROR


# The errors ``error_status`` answers with a status of their own (any other is a bug: 500).
MAPPED_ERRORS: tuple[type[BaseException], ...] = (
    InvalidInput,
    ModelNotFound,
    RepositoryChangesDisabled,
    ModelNotReady,
    ServerNotReady,
    ServerNotLive,
    NotImplementedError,
    UnsupportedProtocol,
    HTTPException,
    ClientDisconnect,
)


def error_body(error: BaseException) -> tuple[int, bytes]:
    """(HTTP status, JSON body ``{"error": message}``) of an error."""
    status, _, message = error_status(error)
    return status, orjson.dumps({"error": message})
