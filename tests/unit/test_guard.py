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

from zkelect import (
    FENCING_HEADER,
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
