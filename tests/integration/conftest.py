"""Fixtures for election tests: candidates that are always stopped, pass or fail."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from curator_support import build_latch_peer
from election_support import FAST, Candidate, Recorder
from pg_support import LocalPostgres, PostgresUnavailable

from zkelect import Election, ElectionConfig


@pytest.fixture
def candidates() -> Iterator[Callable[..., Candidate]]:
    """``candidates(hosts, path, id, **kw)`` builds a started (unless start=False) candidate
    with a Recorder; every one is stopped at teardown, pass or fail."""
    made: list[Election] = []

    def make(
        client_or_hosts: Any,
        path: str,
        candidate_id: str,
        *,
        start: bool = True,
        config: ElectionConfig = FAST,
        **kw: Any,
    ) -> Candidate:
        recorder = Recorder()
        election = Election(
            client_or_hosts,
            path,
            candidate_id=candidate_id,
            config=config,
            on_elected=recorder.on_elected,
            on_revoked=recorder.on_revoked,
            **kw,
        )
        made.append(election)
        if start:
            election.start()
        return Candidate(election, recorder)

    yield make
    errors = []
    for election in made:
        try:
            election.stop()
        except Exception as exc:  # keep stopping the others
            errors.append(exc)
    assert not errors, errors


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """A real PostgreSQL server on loopback for the whole session; fails (not skips) when
    PostgreSQL is not installed, with the install hint."""
    try:
        server = LocalPostgres().start()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def latch_peer(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The java command of a real Curator LeaderLatch peer (tests/java/LatchPeer.java),
    compiled once per session; fails (never skips) without javac or Curator."""
    return build_latch_peer(tmp_path_factory.mktemp("latch-peer"))
