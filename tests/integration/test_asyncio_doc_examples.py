"""docs/asyncio.md's examples run: every Python block compiles, and the ASGI app's lifespan
protocol is driven for real (startup, requests, shutdown) on a real ensemble, the way an ASGI
server drives it: two instances, one leads and runs the leader-only job, shutting it down
hands the job to the other, and a missing chroot fails the startup cleanly."""

from __future__ import annotations

import ast
import asyncio
import json
import re
import types
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient

from zkelect._election.nodes import Contender, election_order
from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble

DOC = Path(__file__).resolve().parents[2] / "docs" / "asyncio.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)
App = Callable[[dict[str, Any], Any, Any], Coroutine[Any, Any, None]]


def python_blocks() -> list[str]:
    return BLOCK.findall(DOC.read_text())


def load_asgi_example(monkeypatch: pytest.MonkeyPatch, instance: str) -> App:
    """Execute the ASGI example block as a module named after the instance it serves."""
    (source,) = [block for block in python_blocks() if '"lifespan.startup"' in block]
    monkeypatch.setenv("INSTANCE_ID", instance)  # read when the module is executed
    module = types.ModuleType(f"asgi_example_{instance}")
    exec(compile(source, f"{DOC}:asgi-example", "exec"), module.__dict__)
    app: App = module.app
    return app


class Lifespan:
    """One app's lifespan scope, driven as an ASGI server does: a task, and a queue of
    messages each way."""

    def __init__(self, app: App) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        self.task = asyncio.create_task(app(scope, self.inbox.get, self.outbox.put))

    async def send(self, event: str) -> dict[str, Any]:
        await self.inbox.put({"type": f"lifespan.{event}"})
        return await asyncio.wait_for(self.outbox.get(), 30)


async def get(app: App) -> dict[str, Any]:
    """GET / through the app's http scope; the JSON body."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    await asyncio.wait_for(app(scope, receive, send), 10)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"], sent
    assert sent[0]["status"] == 200
    return dict(json.loads(sent[1]["body"]))


def test_every_python_block_compiles() -> None:
    blocks = python_blocks()
    assert len(blocks) >= 5
    for block in blocks:  # snippets may await at top level, as in a REPL (python -m asyncio)
        compile(block, str(DOC), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_asgi_example_lifespan_on_a_real_ensemble(
    ensemble: LocalEnsemble,
    kazoo_client: KazooClient,
    zk_path: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kazoo_client.ensure_path(zk_path)
    monkeypatch.setenv("ZKELECT_HOSTS", f"{ensemble.hosts}{zk_path}")  # chroot: one per test
    web1, web2 = (load_asgi_example(monkeypatch, name) for name in ("web-1", "web-2"))

    def published() -> str | None:
        stat = kazoo_client.exists(f"{zk_path}/app/leader")
        return kazoo_client.get(f"{zk_path}/app/leader")[0].decode() if stat else None

    def candidates() -> list[Contender]:
        return election_order(kazoo_client.get_children(f"{zk_path}/app/election"))

    async def until(predicate: Callable[[], object], message: str) -> None:
        # wait_for blocks: in a thread, so the elections' loop runs meanwhile.
        await asyncio.to_thread(wait_for, predicate, 15, 0.02, message)

    async def scenario() -> None:
        first, second = Lifespan(web1), Lifespan(web2)
        assert await first.send("startup") == {"type": "lifespan.startup.complete"}
        assert await second.send("startup") == {"type": "lifespan.startup.complete"}
        await until(lambda: published() == "web-1", "the first instance runs the job")
        assert await get(web1) == {"instance": "web-1", "leader": True}
        assert await get(web2) == {"instance": "web-2", "leader": False}

        assert await first.send("shutdown") == {"type": "lifespan.shutdown.complete"}
        await asyncio.wait_for(first.task, 10)  # the lifespan coroutine returned
        await until(lambda: published() == "web-2", "the job moves to the second instance")
        assert await get(web2) == {"instance": "web-2", "leader": True}
        assert len(candidates()) == 1  # web-1 left: its node was deleted

        assert await second.send("shutdown") == {"type": "lifespan.shutdown.complete"}
        await asyncio.wait_for(second.task, 10)
        assert candidates() == []

    asyncio.run(scenario())


def test_asgi_example_startup_fails_cleanly_without_its_chroot(
    ensemble: LocalEnsemble, zk_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZKELECT_HOSTS", f"{ensemble.hosts}{zk_path}/missing")
    app = load_asgi_example(monkeypatch, "web-3")

    async def scenario() -> dict[str, Any]:
        lifespan = Lifespan(app)
        reply = await lifespan.send("startup")
        await asyncio.wait_for(lifespan.task, 10)  # the app returned: the server stops
        return reply

    reply = asyncio.run(scenario())
    assert reply["type"] == "lifespan.startup.failed", reply
    assert "missing" in reply["message"], reply
