"""Prometheus metrics of the UI process, served at ``/metrics`` on the page's own port.

Names carry no symptom or disease: labels are the page action, the outcome and the error kind.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

REQUESTS = Counter(
    "symptom_dx_ui_requests",
    "Page actions handled, by action and outcome",
    ["action", "outcome"],
)
BACKEND_CALLS = Histogram(
    "symptom_dx_ui_backend_request_duration_seconds",
    "Latency of calls from the UI to the model server, by call and outcome",
    ["call", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BACKEND_ERRORS = Counter(
    "symptom_dx_ui_backend_errors",
    "Failed calls to the model server, by kind (unavailable, timeout, rejected, invalid)",
    ["kind"],
)


async def metrics_endpoint(request: Request) -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def metrics_route() -> Route:
    """The ``/metrics`` route to add to the page's server."""
    return Route("/metrics", metrics_endpoint, methods=["GET"])
