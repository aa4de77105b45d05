"""SQLiteFencedStore.fenced: the epoch check, the caller's writes and the new mark are one
transaction that holds SQLite's write lock, so other writers (threads or processes) wait."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlite_support import LoggedStore

from zkelect import ConfigurationError, FencingToken, StaleEpochError


def token(epoch: int) -> FencingToken:
    return FencingToken(epoch, "/e/x", f"node-{epoch}", 0x10)


@pytest.fixture
def db(tmp_path: Path) -> LoggedStore:
    return LoggedStore(tmp_path / "fence.db")


def test_the_block_holds_the_write_lock_until_it_ends(db: LoggedStore) -> None:
    assert not db.locked()
    with db.store.fenced("orders", token(5)) as conn:
        assert db.locked()
        db.append(conn, 5)
    assert not db.locked()
    assert db.logged() == [5]
    assert db.store.highest_epoch("orders") == 5


@pytest.mark.parametrize(("first", "second"), [(5, 9), (9, 5)], ids=["older-first", "newer-first"])
def test_a_writer_thread_waits_for_the_open_block_then_sees_its_epoch(
    db: LoggedStore, first: int, second: int
) -> None:
    inside, release = threading.Event(), threading.Event()
    outcome: list[str] = []

    def holder() -> None:
        with db.store.fenced("orders", token(first)) as conn:
            inside.set()
            assert release.wait(30), "the test never released the block"
            db.append(conn, first)

    def latecomer() -> None:
        try:
            with db.store.fenced("orders", token(second)) as conn:
                db.append(conn, second)
            outcome.append("applied")
        except StaleEpochError as exc:
            outcome.append(f"stale below {exc.current_epoch}")

    threads = [threading.Thread(target=holder), threading.Thread(target=latecomer)]
    threads[0].start()
    try:
        assert inside.wait(30), "the first writer never entered its block"
        assert db.locked()  # whenever the second writer gets there, it has to wait
        threads[1].start()
    finally:
        release.set()
        for thread in threads:
            if thread.ident is not None:
                thread.join(30)
    if second > first:
        assert (outcome, db.logged()) == (["applied"], [first, second])
    else:
        assert (outcome, db.logged()) == ([f"stale below {first}"], [first])
    assert db.store.highest_epoch("orders") == max(first, second)


def test_a_stale_token_never_runs_the_block_and_a_failing_block_rolls_back(db: LoggedStore) -> None:
    db.store.write("orders", token(7), lambda conn: None)
    ran: list[int] = []
    with pytest.raises(StaleEpochError), db.store.fenced("orders", token(6)):
        ran.append(6)
    with pytest.raises(RuntimeError), db.store.fenced("orders", token(8)) as conn:
        db.append(conn, 8)
        raise RuntimeError("the caller's write failed")
    assert (ran, db.logged(), db.store.highest_epoch("orders")) == ([], [], 7)
    assert not db.locked()


def test_a_block_that_ends_the_transaction_itself_is_refused(db: LoggedStore) -> None:
    refused = pytest.raises(ConfigurationError, match="committed or rolled back inside")
    with refused, db.store.fenced("orders", token(5)) as conn:
        conn.execute("COMMIT")
    assert db.store.highest_epoch("orders") is None
    assert not db.locked()


def test_bad_arguments_are_typed_errors_before_the_transaction(db: LoggedStore) -> None:
    with pytest.raises(ConfigurationError, match="resource"), db.store.fenced("", token(1)):
        pass
    not_a_token: Any = 5
    with pytest.raises(ConfigurationError, match="FencingToken"), db.store.fenced("r", not_a_token):
        pass
    assert db.store.highest_epoch("orders") is None
