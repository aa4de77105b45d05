"""``/metrics``, ``/healthz`` and ``/leader`` on one small HTTP server.

Orchestration needs three questions answered over HTTP, cheaply and without a client
library: what are the metrics (Prometheus scrapes them), is this process's ZooKeeper
session healthy (a liveness/readiness probe), and does this process lead (a load
balancer's health check routes writes only to the leader, the way HAProxy checks
Patroni's primary endpoint). Every answer is computed from in-memory state: a probe
never sends a request to ZooKeeper, so probing cannot add load or block on a partition.

The server is ``http.server.ThreadingHTTPServer`` in a daemon thread: no dependency,
one short-lived thread per request, fine for probes and scrapes (this is not an API
server). It binds to loopback unless told otherwise.

``zkelect serve`` runs one candidate with this server, which the compose stack and the
tests use::

    zkelect serve --hosts 127.0.0.1:2181 --path /elections/demo --id node-a --port 9464
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import REGISTRY, CollectorRegistry

from zkelect._zookeeper.outcomes import ConnectionState
from zkelect.errors import ConfigurationError, ElectionStoppedError, ZkElectError

if TYPE_CHECKING:
    from zkelect._election.election import Election

__all__ = ["StatusServer"]

log = logging.getLogger("zkelect")

_JSON = "application/json"
_ENDPOINTS = ["/metrics", "/healthz", "/leader", "/leader?election=<path>"]


class StatusServer:
    """Serves ``/metrics``, ``/healthz`` and ``/leader`` for the elections it is given.

    * ``/metrics``: the Prometheus exposition of ``registry`` (prometheus_client's global
      REGISTRY by default); OpenMetrics when the scraper asks for it.
    * ``/healthz``: 200 while every election is a started candidate and every ZooKeeper
      session they use is connected; 503 otherwise (also while a session is SUSPENDED:
      the process cannot tell yet whether it survives). JSON ``{"status", "sessions"}``.
      With no elections at all it answers 200: there is nothing to be unhealthy about.
    * ``/leader``: 200 only while this process leads at least one of its elections (or
      the one named by ``?election=/path``) *and* the leader's local lease is valid;
      503 otherwise; 404 for an election this server does not know.

    ``start()``/``stop()`` or a ``with`` block; ``port`` is the bound port (pass 0 for a
    free one). Elections may be added and removed while it runs, from any thread.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        registry: CollectorRegistry | None = None,
        elections: Iterable[Election] = (),
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigurationError(f"port must be an integer in 0..65535, got {port!r}")
        if not isinstance(host, str):
            raise ConfigurationError(f"host must be a string, got {host!r}")
        self.host = host
        self._requested_port = port
        self.registry = REGISTRY if registry is None else registry
        self._lock = threading.Lock()
        if isinstance(elections, (str, bytes)) or not isinstance(elections, Iterable):
            raise ConfigurationError(f"elections must be a list of Elections, got {elections!r}")
        self._elections: list[Election] = [_election(e) for e in elections]
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> StatusServer:
        """Bind and serve in a daemon thread. OSError if the address cannot be bound."""
        if self._httpd is not None:
            return self
        httpd = _HTTPServer((self.host, self._requested_port), self)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"zkelect-http-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

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

    def __enter__(self) -> StatusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the requested one until started)."""
        httpd = self._httpd
        return self._requested_port if httpd is None else int(httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # -- elections ------------------------------------------------------------------------------

    def add(self, election: Election) -> None:
        _election(election)
        with self._lock:
            if election not in self._elections:
                self._elections.append(election)

    def remove(self, election: Election) -> None:
        with self._lock:
            if election in self._elections:
                self._elections.remove(election)

    @property
    def elections(self) -> list[Election]:
        with self._lock:
            return list(self._elections)

    # -- the answers (plain methods, so they can be tested without HTTP) ------------------------

    def health(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) of ``/healthz``."""
        sessions: dict[int, dict[str, Any]] = {}
        problems: list[str] = []
        for election in self.elections:
            session = election.session
            entry = sessions.get(id(session))
            if entry is None:
                session_id = session.session_id
                entry = sessions[id(session)] = {
                    "hosts": session.hosts,
                    "session_id": None if session_id is None else f"{session_id:#x}",
                    "state": session.state.value,
                    "elections": [],
                }
                if session.state is not ConnectionState.CONNECTED:
                    problems.append(f"session to {session.hosts} is {session.state.value}")
            entry["elections"].append(election.path)
            problem = _candidate_problem(election)
            if problem is not None:
                problems.append(f"{election.path}: {problem}")
        body: dict[str, Any] = {
            "status": "unavailable" if problems else "ok",
            "sessions": list(sessions.values()),
        }
        if problems:
            body["problems"] = problems
        return (503 if problems else 200), body

    def leader(self, election: str | None = None) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) of ``/leader`` (``?election=`` as ``election``)."""
        elections = self.elections
        if election is not None:
            elections = [e for e in elections if e.path == election]
            if not elections:
                return 404, {"error": f"this process takes no part in election {election!r}"}
        rows = [_leader_row(e) for e in elections]
        led = [row for row in rows if row["is_leader"]]
        if led:
            body = dict(led[0])
            if len(rows) > 1:
                body["leading"] = [row["election"] for row in led]
            return 200, body
        if rows:
            return 503, dict(rows[0])
        return 503, {"election": None, "candidate_id": None, "epoch": None, "is_leader": False}

    def metrics(self, accept: str | None) -> tuple[bytes, str]:
        """(body, content type) of ``/metrics`` for the scraper's Accept header."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


def _election(value: object) -> Election:
    from zkelect._election.election import Election  # at call time: no import cycle

    if not isinstance(value, Election):
        raise ConfigurationError(f"expected a zkelect Election, got {value!r}")
    return value


def _candidate_problem(election: Election) -> str | None:
    """Why this election is not a healthy candidate, or None."""
    try:
        election.wait_for_leadership(0)
    except ElectionStoppedError:
        return f"not a candidate ({election.lifecycle.value})"
    except ZkElectError as exc:
        return f"gave up: {exc}"
    return None


def _leader_row(election: Election) -> dict[str, Any]:
    try:
        lead = election.wait_for_leadership(0)
    except ZkElectError:
        lead = None
    leading = lead is not None and lead.is_valid()
    return {
        "election": election.path,
        "candidate_id": election.candidate_id,
        "epoch": lead.epoch if lead is not None and leading else None,
        "is_leader": leading,
    }


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a stuck client must not keep the process alive

    def __init__(self, address: tuple[str, int], status: StatusServer) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.status = status
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "zkelect"
    protocol_version = "HTTP/1.0"  # one request per connection: probes do not keep-alive

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, *, send_body: bool) -> None:
        url = urlsplit(self.path)
        status = self.server.status
        try:
            if url.path == "/metrics":
                body, content_type = status.metrics(self.headers.get("Accept"))
                self._send(200, body, content_type, send_body)
                return
            if url.path == "/healthz":
                code, doc = status.health()
            elif url.path == "/leader":
                names = parse_qs(url.query).get("election")
                code, doc = status.leader(names[-1] if names else None)
            else:
                code, doc = 404, {"error": f"no such endpoint {url.path!r}", "try": _ENDPOINTS}
        except Exception as exc:  # a probe must get an answer, never a dropped connection
            log.exception("zkelect: error while answering %s", self.path)
            code, doc = 500, {"error": f"{type(exc).__name__}: {exc}"}
        self._send(code, (json.dumps(doc) + "\n").encode(), _JSON, send_body)

    def _send(self, code: int, body: bytes, content_type: str, send_body: bool) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # Scrapes and probes arrive every few seconds: keep them out of stderr.
        log.debug("zkelect http %s: " + format, self.address_string(), *args)
