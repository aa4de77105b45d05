"""Shared fixtures: real ZooKeeper ensembles for the integration tests.

Integration tests FAIL (they do not skip) when ZooKeeper or Java is missing, so a CI machine that
lacks them cannot pass silently; set ZKELECT_SKIP_INTEGRATION=1 to skip them on purpose.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient

from zkelect.errors import ZooKeeperNotFoundError
from zkelect.testing.ensemble import LocalEnsemble, ZooKeeperInstall, find_zookeeper

INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"
SKIP_ENV = "ZKELECT_SKIP_INTEGRATION"
# Fast failure detection: 200 ms ticks, sessions may be as short as 400 ms.
ENSEMBLE_DEFAULTS: dict[str, Any] = {
    "tick_time_ms": 200,
    "min_session_timeout_ms": 400,
    "max_session_timeout_ms": 20_000,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = os.environ.get(SKIP_ENV) == "1"
    for item in items:
        if INTEGRATION_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)
            if skip:
                item.add_marker(pytest.mark.skip(reason=f"{SKIP_ENV}=1"))


@pytest.fixture(scope="session")
def zookeeper_install() -> ZooKeeperInstall:
    """The ZooKeeper to run; a missing one fails the test with the install hint."""
    try:
        return find_zookeeper()
    except ZooKeeperNotFoundError as exc:
        message = str(exc)  # failed outside the except block: no chained traceback noise
    pytest.fail(f"{message} (or set {SKIP_ENV}=1 to skip the integration tests)", pytrace=False)


@pytest.fixture(scope="session")
def ensemble(zookeeper_install: ZooKeeperInstall) -> Iterator[LocalEnsemble]:
    """One 3-member ensemble for the whole session. Tests that kill, pause or restart members
    must use ``make_ensemble`` instead, so they cannot disturb the others."""
    with LocalEnsemble(3, **ENSEMBLE_DEFAULTS) as ens:
        yield ens


@pytest.fixture
def make_ensemble(
    zookeeper_install: ZooKeeperInstall,
) -> Iterator[Callable[..., LocalEnsemble]]:
    """A factory for private, started ensembles; all of them are stopped at teardown."""
    made: list[LocalEnsemble] = []

    def make(size: int = 3, **kw: Any) -> LocalEnsemble:
        ens = LocalEnsemble(size, **{**ENSEMBLE_DEFAULTS, **kw})
        made.append(ens)
        return ens.start()

    yield make
    for ens in made:
        ens.stop()


@pytest.fixture
def zk_path(request: pytest.FixtureRequest) -> str:
    """A fresh, unique znode path for this test (not created): /t/<test-name>-<uuid8>."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_.")[:80] or "test"
    return f"/t/{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def kazoo_clients() -> Iterator[Callable[..., KazooClient]]:
    """``kazoo_clients(hosts, timeout=10.0, **kazoo_options)``: started kazoo clients, each
    stopped and closed at teardown, pass or fail."""
    made: list[KazooClient] = []

    def make(hosts: str, *, timeout: float = 10.0, **kw: Any) -> KazooClient:
        client = KazooClient(hosts=hosts, timeout=timeout, **kw)
        made.append(client)
        client.start(timeout=30)
        return client

    yield make
    for client in made:
        client.stop()
        client.close()


@pytest.fixture
def kazoo_client(ensemble: LocalEnsemble) -> Iterator[KazooClient]:
    """A started kazoo client on the session ensemble; stopped and closed at teardown."""
    client = KazooClient(hosts=ensemble.hosts, timeout=10.0)
    client.start(timeout=30)
    try:
        yield client
    finally:
        client.stop()
        client.close()
