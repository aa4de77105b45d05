"""The receiver-side fencing guard, behind a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlite_support import LoggedStore

from zkelect import (
    FENCING_HEADER,
    ConfigurationError,
    FencingGuard,
    FencingToken,
    InvalidTokenError,
    SQLiteFencedStore,
    StaleEpochError,
    fencing_headers,
)


def token(epoch: int) -> FencingToken:
    return FencingToken(epoch, "/elections/orders", f"node-{epoch}", 0xABC)


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    """A tiny service whose write endpoint is guarded, as docs/fencing.md shows."""
    guard = FencingGuard()
    applied: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            try:
                with guard.admit("orders", self.headers.get(FENCING_HEADER)):
                    applied.append(body)
                status, reply = 200, {"ok": True}
            except StaleEpochError as exc:
                status, reply = 409, {"error": str(exc), "current_epoch": exc.current_epoch}
            except InvalidTokenError as exc:
                status, reply = 400, {"error": str(exc)}
            payload = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/orders", applied
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def post(url: str, body: str, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_stale_and_malformed_tokens_are_refused_over_http(server: tuple[str, list[str]]) -> None:
    url, applied = server
    assert post(url, "from e5", fencing_headers(token(5)))[0] == 200
    assert post(url, "from e9", fencing_headers(token(9)))[0] == 200
    status, reply = post(url, "late from e5", fencing_headers(token(5)))
    assert status == 409 and reply["current_epoch"] == 9
    assert "0x5" in str(reply["error"]) and "0x9" in str(reply["error"])
    assert post(url, "no token", {})[0] == 400
    assert post(url, "garbage", {FENCING_HEADER: "zk1:nope"})[0] == 400
    assert applied == ["from e5", "from e9"]


def test_guard_backed_by_a_store_shares_the_high_water_mark(tmp_path: Path) -> None:
    store = SQLiteFencedStore(tmp_path / "guard.db")
    first, second = FencingGuard(store), FencingGuard(store)  # two receivers, one database
    first.check("orders", str(token(9)))
    with pytest.raises(StaleEpochError):
        second.check("orders", str(token(5)))
    assert second.highest_epoch("orders") == 9


def test_with_a_store_the_block_writes_inside_the_fenced_transaction(tmp_path: Path) -> None:
    db = LoggedStore(tmp_path / "guard.db")
    guard = FencingGuard(db.store)
    with guard.admit("orders", str(token(5))) as admitted:
        assert admitted.token == token(5)
        assert db.locked()  # a receiver in any process waits until this block ends
        db.append(admitted.connection, 5)
    assert (db.logged(), guard.highest_epoch("orders")) == ([5], 5)

    with pytest.raises(RuntimeError), guard.admit("orders", str(token(8))) as admitted:
        db.append(admitted.connection, 8)
        raise RuntimeError("the receiver's write failed")
    assert (db.logged(), guard.highest_epoch("orders")) == ([5], 5)  # rolled back together

    ran: list[int] = []
    with pytest.raises(StaleEpochError), FencingGuard(db.store).admit("orders", str(token(4))):
        ran.append(4)
    assert (ran, db.logged()) == ([], [5])


def test_a_store_without_a_fenced_transaction_is_refused() -> None:
    class CheckThenWriteStore:  # the old protocol: the check could not hold the caller's write
        def write(self, resource: str, token: FencingToken, action: object) -> None: ...

        def highest_epoch(self, resource: str) -> int | None:
            return None

    with pytest.raises(ConfigurationError, match=r"has no fenced\(\)"):
        FencingGuard(CheckThenWriteStore())  # type: ignore[arg-type]


def test_bad_input_is_refused_before_the_store_is_touched(tmp_path: Path) -> None:
    db = LoggedStore(tmp_path / "guard.db")
    guard = FencingGuard(db.store)
    with pytest.raises(ConfigurationError, match="resource"), guard.admit("", str(token(5))):
        pass
    with pytest.raises(InvalidTokenError), guard.admit("orders", "zk1:nope"):
        pass
    with pytest.raises(InvalidTokenError, match="missing"), guard.admit("orders", None):
        pass
    assert guard.highest_epoch("orders") is None


def test_in_memory_the_mark_moves_when_the_block_succeeds_and_there_is_no_connection() -> None:
    guard = FencingGuard()
    with pytest.raises(RuntimeError), guard.admit("orders", str(token(9))):
        raise RuntimeError("the receiver's write failed")
    assert guard.highest_epoch("orders") is None
    with guard.admit("orders", str(token(5))) as admitted:
        assert admitted.token.epoch == 5
        with pytest.raises(ConfigurationError, match="in memory"):
            admitted.connection  # noqa: B018
    assert guard.highest_epoch("orders") == 5
