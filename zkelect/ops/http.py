"""``/livez``, ``/readyz``, ``/healthz``, ``/leader`` and ``/metrics`` on one small HTTP server.

Orchestration asks four questions over HTTP, cheaply and without a client library: is this
process alive (a liveness probe: restart it if not), can it do its work now (a readiness
probe), does it lead (a load balancer's health check routes writes only to the leader, the
way HAProxy checks Patroni's primary endpoint), and what are its metrics (Prometheus scrapes
them). Every answer is computed from in-memory state (_probes.py): a probe never sends a
request to ZooKeeper, so probing cannot add load or block on a partition.

The server (_http_serving.py) answers GET and HEAD, 404 for an unknown path and 405 for any
other method, with short JSON bodies. It binds to loopback unless told otherwise.

``zkelect serve`` runs one candidate with this server, which the compose stack and the
tests use; ``zkelect run --http-port`` serves the same endpoints::

    zkelect serve --hosts 127.0.0.1:2181 --path /elections/demo --id node-a --port 9464
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client.registry import REGISTRY, CollectorRegistry

from zkelect.errors import ConfigurationError
from zkelect.ops import _probes
from zkelect.ops._http_serving import Answer, HttpEndpoints, Request, json_answer, metrics
from zkelect.ops._probes import LivenessCheck

if TYPE_CHECKING:
    from zkelect._election.election import Election

__all__ = ["StatusServer"]

_LISTED = ["/livez", "/readyz", "/healthz", "/leader", "/leader?election=<path>", "/metrics"]


class StatusServer:
    """Serves the endpoints below for the elections it is given (docs/observability.md).

    * ``/livez``: 200 while the process and its loops run (the session's threads, its timer
      loop and heartbeat chain; and every check given to ``add_liveness_check``); 503 with
      the problems otherwise. A ZooKeeper outage does *not* fail it.
    * ``/readyz``: 200 while every election is a started candidate and every session is
      connected with a valid local lease (a quorum answered within the lease); 503 with the
      problems otherwise (also while a session is SUSPENDED). JSON ``{"status",
      "sessions"}``; 200 with no elections at all: there is nothing to be unready about.
    * ``/healthz``: the same answer as ``/readyz`` (existing probes keep their meaning).
    * ``/leader``: 200 only while this process leads at least one of its elections (or
      the one named by ``?election=/path``) *and* the leader's local lease is valid;
      503 otherwise, with the leader this process knows of; 404 for an election this server
      does not know.
    * ``/metrics``: the Prometheus exposition of ``registry`` (prometheus_client's global
      REGISTRY by default); OpenMetrics when the scraper asks for it.

    ``start()``/``stop()`` or a ``with`` block; ``port`` is the bound port (pass 0 for a
    free one). Elections and liveness checks may be added and removed while it runs, from
    any thread.
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
        self.registry = REGISTRY if registry is None else registry
        self._lock = threading.Lock()
        if isinstance(elections, (str, bytes)) or not isinstance(elections, Iterable):
            raise ConfigurationError(f"elections must be a list of Elections, got {elections!r}")
        self._elections: list[Election] = [_election(e) for e in elections]
        self._checks: dict[str, LivenessCheck] = {}
        self._http = HttpEndpoints(
            host,
            port,
            {
                "/livez": lambda _: json_answer(*self.liveness()),
                "/readyz": lambda _: json_answer(*self.readiness()),
                "/healthz": lambda _: json_answer(*self.health()),
                "/leader": lambda request: json_answer(*self.leader(request.last("election"))),
                "/metrics": self._metrics,
            },
            name="zkelect-http",
            listed=_LISTED,
        )

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> StatusServer:
        """Bind and serve in a daemon thread. OSError if the address cannot be bound."""
        self._http.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket. Idempotent."""
        self._http.stop()

    def __enter__(self) -> StatusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the requested one until started)."""
        return self._http.port

    @property
    def url(self) -> str:
        return self._http.url

    # -- elections and liveness checks ------------------------------------------------------------

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

    def add_liveness_check(self, name: str, check: LivenessCheck) -> None:
        """``/livez`` fails while ``check()`` returns a problem (a string; None while fine),
        e.g. the loop of ``zkelect run``'s supervisor. It must be quick and never block:
        it runs on every probe. A check of the same name is replaced."""
        if not callable(check):
            raise ConfigurationError(f"check must be callable, got {check!r}")
        with self._lock:
            self._checks[name] = check

    def remove_liveness_check(self, name: str) -> None:
        with self._lock:
            self._checks.pop(name, None)

    # -- the answers (plain methods, so they can be tested without HTTP) ------------------------

    def liveness(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) of ``/livez``."""
        with self._lock:
            checks = dict(self._checks)
        return _probes.liveness(self.elections, checks)

    def readiness(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) of ``/readyz``."""
        return _probes.readiness(self.elections)

    def health(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) of ``/healthz``: an alias of ``/readyz``."""
        return self.readiness()

    def leader(self, election: str | None = None) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) of ``/leader`` (``?election=`` as ``election``)."""
        return _probes.leader(self.elections, election)

    def _metrics(self, request: Request) -> Answer:
        return metrics(self.registry, request)


def _election(value: object) -> Election:
    from zkelect._election.election import Election  # at call time: no import cycle

    if not isinstance(value, Election):
        raise ConfigurationError(f"expected a zkelect Election, got {value!r}")
    return value
