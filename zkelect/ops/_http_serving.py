"""The small HTTP server behind zkelect's endpoints (``zkelect run``/``serve``, the exporter).

GET and HEAD only; each known path has a *route* that computes its answer from memory. What
every server answers the same way, so a probe or a script can rely on it:

* an unknown path: 404 with a short JSON body naming the endpoints that exist;
* any other method (POST, PUT, DELETE, PATCH, ...): 405 with ``Allow: GET, HEAD`` and a JSON
  body, never http.server's HTML error page;
* a route that raises: 500 with the error as JSON (a probe gets an answer, not a dropped
  connection); a malformed request: its 4xx as JSON.

``http.server.ThreadingHTTPServer`` in a daemon thread: no dependency, one short-lived thread
per request, enough for probes and scrapes (this is not an API server).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

__all__ = ["ALLOWED", "Answer", "HttpEndpoints", "Request", "Route", "json_answer", "metrics"]

log = logging.getLogger("zkelect")

JSON = "application/json"
ALLOWED = "GET, HEAD"


@dataclass(frozen=True)
class Request:
    """What a route may look at: the path, the query's values, the Accept header."""

    path: str
    query: Mapping[str, list[str]]
    accept: str | None

    def last(self, name: str) -> str | None:
        """The last value given for query parameter ``name`` (None if absent)."""
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()


Route = Callable[[Request], Answer]


def json_answer(status: int, doc: Any, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    """A JSON body (one line, newline-terminated, as ``curl`` users expect)."""
    return Answer(status, (json.dumps(doc) + "\n").encode(), JSON, headers)


def metrics(registry: CollectorRegistry, request: Request) -> Answer:
    """The Prometheus exposition of ``registry``; OpenMetrics when the scraper asks for it."""
    encoder, content_type = choose_encoder(request.accept or "")
    return Answer(200, encoder(registry), content_type)


class HttpEndpoints:
    """Serves ``routes`` (path -> route) on ``host:port`` from a daemon thread.

    ``listed`` is what a 404 names as the endpoints that exist (default: the routes' paths).
    ``start()``/``stop()``; ``port`` is the bound port once started (pass 0 for a free one).
    """

    def __init__(
        self,
        host: str,
        port: int,
        routes: Mapping[str, Route],
        *,
        name: str,
        listed: Sequence[str] | None = None,
    ) -> None:
        self.host = host
        self.routes = dict(routes)
        self.listed = list(self.routes) if listed is None else list(listed)
        self._requested_port = port
        self._name = name
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind and serve in a daemon thread. OSError if the address cannot be bound."""
        if self._httpd is not None:
            return
        httpd = _HTTPServer((self.host, self._requested_port), self)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"{self._name}-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket. Idempotent."""
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def serving(self) -> bool:
        """The serving thread runs (a liveness probe that got an answer knows it does)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def port(self) -> int:
        httpd = self._httpd
        return self._requested_port if httpd is None else int(httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def answer(self, request: Request) -> Answer:
        """The route's answer for ``request``; 404 for an unknown path, 500 if it raises."""
        route = self.routes.get(request.path)
        if route is None:
            return json_answer(
                404, {"error": f"no such endpoint {request.path!r}", "endpoints": self.listed}
            )
        try:
            return route(request)
        except Exception as exc:  # a probe must get an answer, never a dropped connection
            log.exception("zkelect: error while answering %s", request.path)
            return json_answer(500, {"error": f"{type(exc).__name__}: {exc}"})


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a stuck client must not keep the process alive

    def __init__(self, address: tuple[str, int], endpoints: HttpEndpoints) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.endpoints = endpoints
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "zkelect"
    protocol_version = "HTTP/1.0"  # one request per connection: probes do not keep-alive

    def do_GET(self) -> None:
        self._send(self._answer(), send_body=True)

    def do_HEAD(self) -> None:
        self._send(self._answer(), send_body=False)

    def _answer(self) -> Answer:
        url = urlsplit(self.path)
        request = Request(url.path, parse_qs(url.query), self.headers.get("Accept"))
        return self.server.endpoints.answer(request)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's errors as JSON. It answers 501 for a method with no ``do_``
        handler: that is a 405 here (the resource exists, only GET and HEAD are allowed)."""
        command = getattr(self, "command", None) or ""
        if code == HTTPStatus.NOT_IMPLEMENTED and command:
            answer = json_answer(
                405,
                {"error": f"method {command} not allowed", "allow": ALLOWED.split(", ")},
                (("Allow", ALLOWED),),
            )
        else:
            text = message or HTTPStatus(code).phrase
            answer = json_answer(code, {"error": text})
        self.close_connection = True
        self._send(answer, send_body=command != "HEAD")

    def _send(self, answer: Answer, *, send_body: bool) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in answer.headers:
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        # Scrapes and probes arrive every few seconds: keep them out of stderr.
        log.debug("zkelect http %s: " + format, self.address_string(), *args)
