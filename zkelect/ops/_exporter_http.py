"""The exporter's HTTP endpoints: ``/metrics``, ``/livez``, ``/readyz``, ``/healthz``, ``/``.

* ``/metrics``: the exporter's registry (OpenMetrics when the scraper asks for it).
* ``/livez``: 200 while the exporter's reading thread runs (and the HTTP thread answers).
  A ZooKeeper outage does not fail it: restarting the exporter would not bring ZooKeeper back.
* ``/readyz``: 200 while its session is connected and the last read of every path answered;
  503 with the problems otherwise (the metrics then show the last values read).
  ``/healthz`` is the same answer.
* ``/``: a tiny JSON index of these. Anything else: 404; other methods than GET and HEAD: 405.

Every answer comes from memory (``ElectionExporter.snapshot()``), never a request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zkelect.ops._http_serving import HttpEndpoints, json_answer, metrics

if TYPE_CHECKING:
    from zkelect.ops.exporter import ElectionExporter

__all__ = ["exporter_endpoints", "exporter_liveness", "exporter_readiness"]

_LISTED = ["/metrics", "/livez", "/readyz", "/healthz"]


def exporter_endpoints(bind: str, port: int, exporter: ElectionExporter) -> HttpEndpoints:
    """The exporter's endpoints on ``bind:port`` (not started)."""
    index = {"service": "zkelect exporter", "paths": exporter.paths, "endpoints": _LISTED}
    return HttpEndpoints(
        bind,
        port,
        {
            "/": lambda _: json_answer(200, index),
            "/metrics": lambda request: metrics(exporter.registry, request),
            "/livez": lambda _: json_answer(*exporter_liveness(exporter)),
            "/readyz": lambda _: json_answer(*exporter_readiness(exporter)),
            "/healthz": lambda _: json_answer(*exporter_readiness(exporter)),
        },
        name="zkelect-exporter-http",
        listed=_LISTED,
    )


def exporter_liveness(exporter: ElectionExporter) -> tuple[int, dict[str, Any]]:
    """200 while the reading thread runs; "ok" only while it is also ready (as /livez of a
    candidate: alive, but not "ok", while the servers do not answer)."""
    if not exporter.running:
        problems = ["the exporter's reading thread is not running"]
        return 503, {"status": "failing", "problems": problems}
    code, body = exporter_readiness(exporter)
    if code != 200:
        return 200, {"status": "alive", "not_ready": body["problems"]}
    return 200, {"status": "ok"}


def exporter_readiness(exporter: ElectionExporter) -> tuple[int, dict[str, Any]]:
    connected = exporter.connected
    problems = [] if connected else ["its ZooKeeper session is not connected"]
    paths: dict[str, dict[str, Any]] = {}
    for path, view in exporter.snapshot().items():
        paths[path] = {"observed": view.observed, "reads": view.reads, "error": view.error}
        if view.error is not None:
            problems.append(f"{path}: the last read failed: {view.error}")
        elif not view.observed:
            problems.append(f"{path}: not read yet")
    body: dict[str, Any] = {
        "status": "unavailable" if problems else "ok",
        "connected": connected,
        "paths": paths,
    }
    if problems:
        body["problems"] = problems
    return (503 if problems else 200), body
