"""LocalEnsemble against real ZooKeeper JVMs: start, serve, crash, pause, restart, stop.

Every wait polls a condition under a deadline; nothing sleeps and hopes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest
from kazoo.client import KazooClient

from zkelect.errors import ConfigurationError, ConnectionFailedError
from zkelect.testing.ensemble import LocalEnsemble

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """Poll ``condition`` until it returns a truthy value; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """True while ``pid`` is a live (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no procfs: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@contextmanager
def client(hosts: str) -> Iterator[KazooClient]:
    zk = KazooClient(hosts=hosts, timeout=10.0)
    zk.start(timeout=30)
    try:
        yield zk
    finally:
        zk.stop()
        zk.close()


def read_via_member(ens: LocalEnsemble, i: int, path: str) -> bytes:
    """Read ``path`` through member ``i`` only, after a sync so the member has caught up."""
    with client(ens.member_hosts(i)) as zk:
        zk.sync(path)
        data: bytes = zk.get(path)[0]
        return data


def wait_for_leader(ens: LocalEnsemble, other_than: int | None = None) -> int:
    """Index of the ZooKeeper leader once there is one (other than ``other_than``)."""

    def leader() -> tuple[int] | None:
        i = ens.leader_index()
        return None if i is None or i == other_than else (i,)

    return wait_for(leader, f"a ZooKeeper leader other than member {other_than}")[0]


def pids(ens: LocalEnsemble) -> list[int]:
    found = [ens.pid(i) for i in range(ens.size)]
    assert all(pid is not None for pid in found)
    return [pid for pid in found if pid is not None]


def test_three_members_serve_with_one_leader(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str
) -> None:
    modes = [ensemble.mode(i) for i in range(ensemble.size)]
    assert sorted(modes) == ["follower", "follower", "leader"]
    assert ensemble.leader_index() == modes.index("leader")
    assert ensemble.hosts == ",".join(f"127.0.0.1:{ensemble.client_port(i)}" for i in range(3))
    assert ensemble.four_letter(0, "ruok") == "imok"

    kazoo_client.create(zk_path, b"hello", makepath=True)
    for i in range(ensemble.size):
        assert read_via_member(ensemble, i, zk_path) == b"hello"


def test_killing_the_leader_elects_a_new_one(
    make_ensemble: Callable[..., LocalEnsemble], zk_path: str
) -> None:
    ens = make_ensemble(3)
    old = ens.leader_index()
    assert old is not None
    old_pid = ens.pid(old)
    assert old_pid is not None

    ens.kill(old)
    assert ens.pid(old) is None
    assert not alive(old_pid)
    wait_for_leader(ens, other_than=old)
    survivors = ",".join(ens.member_hosts(i) for i in range(3) if i != old)
    with client(survivors) as zk:
        zk.create(zk_path, b"after the crash", makepath=True)
    ens.wait_serving(timeout=30)  # the two survivors serve and commit

    ens.restart(old)
    assert ens.mode(old) == "follower"
    assert read_via_member(ens, old, zk_path) == b"after the crash"


def test_paused_follower_stops_answering_and_catches_up_on_resume(
    make_ensemble: Callable[..., LocalEnsemble], zk_path: str
) -> None:
    ens = make_ensemble(3)
    follower = next(i for i in range(3) if ens.mode(i) == "follower")
    pid = ens.pid(follower)
    assert pid is not None

    ens.pause(follower)
    assert Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    with pytest.raises(ConnectionFailedError, match="did not answer 'ruok'"):
        ens.four_letter(follower, "ruok", timeout=0.5)
    assert ens.mode(follower) == ""
    with client(",".join(ens.member_hosts(i) for i in range(3) if i != follower)) as zk:
        zk.create(zk_path, b"written while paused", makepath=True)

    ens.resume(follower)
    wait_for(lambda: ens.mode(follower) == "follower", "the resumed member to follow again")
    assert ens.pid(follower) == pid
    assert read_via_member(ens, follower, zk_path) == b"written while paused"


def test_paused_leader_is_replaced_and_rejoins_as_follower(
    make_ensemble: Callable[..., LocalEnsemble],
) -> None:
    ens = make_ensemble(3)
    old = ens.leader_index()
    assert old is not None

    ens.pause(old)
    # Followers drop a silent leader after syncLimit ticks and elect one of themselves.
    wait_for_leader(ens, other_than=old)
    ens.resume(old)
    wait_for(lambda: ens.mode(old) == "follower", "the old leader to rejoin as a follower")
    ens.wait_serving(timeout=30)


def test_restart_keeps_data_dir_and_ports(
    make_ensemble: Callable[..., LocalEnsemble], zk_path: str
) -> None:
    ens = make_ensemble(3)
    with client(ens.hosts) as zk:
        zk.create(zk_path, b"durable", makepath=True)
    member = next(i for i in range(3) if ens.mode(i) == "follower")
    port, old_pid = ens.client_port(member), ens.pid(member)

    ens.restart(member)

    assert ens.pid(member) not in (None, old_pid)
    assert old_pid is not None and not alive(old_pid)
    assert ens.client_port(member) == port
    assert ens.mode(member) == "follower"
    assert read_via_member(ens, member, zk_path) == b"durable"


def test_stop_leaves_no_process_and_is_idempotent(
    make_ensemble: Callable[..., LocalEnsemble],
) -> None:
    ens = make_ensemble(3)
    member_pids = pids(ens)
    base = ens.member_dir(0).parent
    ens.pause(1)  # stop() must also end a paused member

    ens.stop()

    for pid in member_pids:
        assert not alive(pid), f"ZooKeeper pid {pid} survived stop()"
    assert not base.exists(), "the temporary base_dir should be removed"
    ens.stop()
    with pytest.raises(ConfigurationError, match="not started"):
        ens.pid(0)


@pytest.mark.usefixtures("zookeeper_install")
def test_context_manager_stops_members_when_the_body_raises(tmp_path: Path) -> None:
    ens = LocalEnsemble(1, base_dir=tmp_path, tick_time_ms=200)
    member_pids: list[int] = []
    try:
        with pytest.raises(RuntimeError, match="boom"), ens:
            member_pids = pids(ens)
            raise RuntimeError("boom")
    finally:
        ens.stop()
    assert member_pids
    assert not any(alive(pid) for pid in member_pids)
    assert (tmp_path / "member-1" / "zookeeper.log").exists(), "a caller's base_dir is kept"


def test_single_member_runs_standalone_and_logs_to_its_dir(
    make_ensemble: Callable[..., LocalEnsemble], tmp_path: Path, zk_path: str
) -> None:
    ens = make_ensemble(1, base_dir=tmp_path)
    assert ens.mode(0) == "standalone"
    assert ens.leader_index() == 0
    assert ens.hosts == ens.member_hosts(0)
    with client(ens.hosts) as zk:
        zk.create(zk_path, b"solo", makepath=True)
        assert zk.get(zk_path)[0] == b"solo"

    log = (tmp_path / "member-1" / "zookeeper.log").read_text()
    assert "binding to port" in log or "clientPort" in log, "server log should be written"
    console = (tmp_path / "member-1" / "console.log").read_text()
    assert "multiple SLF4J bindings" not in console
    assert "Exception" not in console


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if text in cmdline and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


@pytest.mark.usefixtures("zookeeper_install")
def test_a_member_that_cannot_start_fails_fast_and_names_its_log() -> None:
    ens = LocalEnsemble(3, extra_config={"initLimit": "not-a-number"}, start_timeout=60)
    started = time.monotonic()
    with pytest.raises(ConnectionFailedError, match="Invalid config") as info:
        ens.start()
    assert time.monotonic() - started < 30, "an exited member must not wait for the timeout"
    match = re.search(r"see (\S+/zookeeper\.log)", str(info.value))
    assert match, str(info.value)
    log = Path(match.group(1))
    assert "not-a-number" in log.read_text(), "the named log explains the failure"
    base = log.parents[1]
    try:
        assert processes_mentioning(str(base)) == [], "a failed start must stop every member"
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.usefixtures("zookeeper_install")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_members_die_when_the_python_parent_is_sigkilled(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from zkelect.testing.ensemble import LocalEnsemble
        ens = LocalEnsemble(1, base_dir={str(tmp_path)!r}).start()
        print(ens.pid(0), flush=True)
        time.sleep(300)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    member_pid = None
    try:
        assert parent.stdout is not None
        member_pid = int(parent.stdout.readline())
        assert alive(member_pid)
        parent.kill()
        parent.wait()
        wait_for(lambda: not alive(member_pid), "the orphaned member to be killed", 15)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if member_pid is not None and alive(member_pid):
            os.kill(member_pid, 9)
