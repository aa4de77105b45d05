"""``zkelect doctor`` as a real subprocess against real ensembles built to have each pitfall.

Each ``zkelect`` run is a ``subprocess.run`` with a deadline (killed by its PID when it
passes) and dies with the test run (PR_SET_PDEATHSIG); ensembles come from the fixtures,
which stop their members by PID.
"""

from __future__ import annotations

import ctypes
import json
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable

from cli_support import cli_env
from election_support import hand_numbered
from kazoo.client import KazooClient
from kazoo.security import make_acl, make_digest_acl

from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble

CHECKS = {
    "ensemble-size",
    "quorum",
    "session-timeout",
    "lease",
    "grace",
    "co-location",
    "four-letter-words",
}


def _die_with_test() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)


def zkelect(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    env = cli_env()
    return subprocess.run(
        [sys.executable, "-m", "zkelect.ops.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_die_with_test,
    )


def doctor(hosts: str, *args: str) -> tuple[int, dict[str, dict[str, str]]]:
    """Run ``zkelect doctor --json``; the exit code and the results by check name."""
    proc = zkelect("doctor", "--hosts", hosts, "--json", "--timeout", "5", *args)
    assert "Traceback" not in proc.stderr, proc.stderr
    results = json.loads(proc.stdout)
    assert isinstance(results, list)
    for r in results:
        assert set(r) == {"check", "status", "reason", "fix"}, r
        assert r["status"] in ("ok", "warn", "fail"), r
        assert r["reason"], r
        assert r["status"] == "ok" or r["fix"], r  # every warn and fail says what to do
    by_check = {r["check"]: r for r in results}
    assert set(by_check) >= CHECKS
    assert proc.returncode == (1 if any(r["status"] == "fail" for r in results) else 0), (
        proc.returncode,
        results,
    )
    return proc.returncode, by_check


def statuses(results: dict[str, dict[str, str]]) -> dict[str, str]:
    return {name: r["status"] for name, r in results.items()}


def test_two_members_fail_the_size_check(make_ensemble: Callable[..., LocalEnsemble]) -> None:
    ens = make_ensemble(2)
    code, results = doctor(ens.hosts)
    assert code == 1
    size = results["ensemble-size"]
    assert size["status"] == "fail"
    assert "2 voting members (from the servers' conf)" in size["reason"]
    assert "an even ensemble tolerates no more failures than one member fewer" in size["reason"]
    assert "use 3 or 5" in size["fix"]
    assert results["quorum"]["status"] == "ok"
    assert "2 of 2 members serve" in results["quorum"]["reason"]


def test_four_members_warn(make_ensemble: Callable[..., LocalEnsemble]) -> None:
    ens = make_ensemble(4)
    code, results = doctor(ens.hosts)
    assert results["ensemble-size"]["status"] == "warn"
    assert "4 tolerate 1, like 3" in results["ensemble-size"]["reason"]
    assert results["quorum"]["status"] == "ok"
    assert code == 0  # warnings alone


def test_a_stopped_majority_is_no_quorum(make_ensemble: Callable[..., LocalEnsemble]) -> None:
    ens = make_ensemble(3)
    ens.kill(1)
    ens.kill(2)
    wait_for(lambda: ens.mode(0) == "", 20, message="the survivor stops serving")
    code, results = doctor(ens.hosts, "/elections/x")
    assert code == 1
    quorum = results["quorum"]
    assert quorum["status"] == "fail"
    assert quorum["reason"].startswith("no quorum: 0 of 3 members serve")
    assert "connection refused" in quorum["reason"]
    assert "not serving" in quorum["reason"]
    for check in ("session-timeout", "election-path"):
        assert results[check]["status"] == "fail", results[check]


def test_nothing_answering_fails_every_server_check_without_a_traceback() -> None:
    ports = []
    for _ in range(3):
        with socket.socket() as sock:  # a port nobody listens on once closed
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    hosts = ",".join(f"127.0.0.1:{p}" for p in ports)
    code, results = doctor(hosts, "/elections/x")
    assert code == 1
    for check in ("quorum", "session-timeout", "election-path", "four-letter-words"):
        assert results[check]["status"] == "fail", results[check]
    assert "no member answered" in results["quorum"]["reason"]
    # The human output: one line per check, status first, no traceback.
    proc = zkelect("doctor", "--hosts", hosts, "--timeout", "5")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert len(lines) == len(CHECKS)
    assert all(line.split()[0] in ("ok", "warn", "fail") for line in lines), lines
    assert proc.stderr == ""


def test_open_and_locked_election_paths(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str
) -> None:
    open_path, locked, secret = f"{zk_path}/open", f"{zk_path}/locked", f"{zk_path}/secret"
    kazoo_client.create(open_path, makepath=True)  # kazoo's default: world:anyone, all
    owner = make_digest_acl("app", "s3cret", all=True)
    kazoo_client.create(locked, acl=[owner, make_acl("world", "anyone", read=True)])
    kazoo_client.create(secret, acl=[owner])

    code, results = doctor(ensemble.hosts, open_path)
    assert code == 1
    acl = results["election-path"]
    assert acl["status"] == "fail"
    assert "anyone can join or delete the leader's node" in acl["reason"]
    assert "world:anyone:cdrwa" in acl["reason"]
    assert "digest or sasl" in acl["fix"]

    # A healthy 3-member ensemble and a locked path: no failure; on loopback the ensemble
    # shares this host, which is a warning, never a failure.
    code, results = doctor(ensemble.hosts, locked)
    assert code == 0
    assert results["election-path"]["status"] == "ok"
    assert "digest:app:" in results["election-path"]["reason"]
    assert results["co-location"]["status"] == "warn"
    assert "the store and the workload fail together" in results["co-location"]["reason"]
    # zkelect run's default --grace (10 s) is cut short after an involuntary loss: said.
    assert results["grace"]["status"] == "warn"
    assert {s for c, s in statuses(results).items() if c not in ("co-location", "grace")} == {"ok"}

    # Not even readable without credentials (ZooKeeper 3.8 checks READ or ADMIN for
    # getACL): locked; with --auth the whole ACL is shown.
    code, results = doctor(ensemble.hosts, secret)
    assert (code, results["election-path"]["status"]) == (0, "ok")
    assert "NoAuth" in results["election-path"]["reason"]
    code, results = doctor(ensemble.hosts, secret, "--auth", "digest:app:s3cret")
    assert (code, results["election-path"]["status"]) == (0, "ok")
    assert "digest:app:" in results["election-path"]["reason"]

    code, results = doctor(ensemble.hosts, f"{zk_path}/missing")
    assert (code, results["election-path"]["status"]) == (0, "warn")
    assert "does not exist" in results["election-path"]["reason"]


def test_sequence_counter_is_read_right_and_a_wrapped_election_fails(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str
) -> None:
    def join(data: bytes = b"") -> str:
        """A candidate node numbered by ZooKeeper; its name."""
        prefix = f"{zk_path}/_c_{uuid.uuid4()}-latch-"
        created = kazoo_client.create(prefix, data, ephemeral=True, sequence=True)
        return created.rsplit("/", 1)[1]

    kazoo_client.create(zk_path, makepath=True)
    # Candidates came and went, and a plain child was added: ZooKeeper's cversion (2 creates
    # per departed child) is no longer the counter, which doctor must read right anyway.
    for _ in range(3):
        kazoo_client.delete(f"{zk_path}/{join()}")
    kazoo_client.create(f"{zk_path}/config")
    leader = join(data=b"a")

    code, results = doctor(ensemble.hosts, zk_path)
    check = results["sequence-wrap"]
    assert check["status"] == "ok", check
    match = re.search(r"next sequence number under \S+ is ([\d,]+): ([\d,]+) left", check["reason"])
    assert match, check["reason"]
    predicted, left = (int(group.replace(",", "")) for group in match.groups())
    assert join().endswith(f"-latch-{predicted:010d}")  # what ZooKeeper gave next
    assert left == 2**31 - predicted

    # Just after a wrap: -2147483648 is the newest; string order (Curator's) puts it first.
    newest = hand_numbered(kazoo_client, zk_path, -(2**31), b"curator-peer")
    code, results = doctor(ensemble.hosts, zk_path)
    check = results["sequence-wrap"]
    assert (code, check["status"]) == (1, "fail"), check
    assert f"puts {newest} first under {zk_path} where zkelect elects {leader}" in check["reason"]
    assert "two leaders, or none, now" in check["reason"]
    assert "delete PATH" in check["fix"] and "docs/safety.md" in check["fix"]

    # A negative number the two orders agree about (it is the oldest in both): a warning.
    kazoo_client.delete(f"{zk_path}/{newest}")
    hand_numbered(kazoo_client, zk_path, -5)
    code, results = doctor(ensemble.hosts, zk_path)
    check = results["sequence-wrap"]
    assert check["status"] == "warn", check
    assert "a contender's sequence number is negative" in check["reason"]


def test_session_timeout_bounds_and_lease(ensemble: LocalEnsemble) -> None:
    # The session ensemble: tickTime 200 ms, syncLimit 5, sessions 0.4..20 s.
    code, results = doctor(ensemble.hosts, "--session-timeout", "30")
    assert code == 0
    assert results["session-timeout"]["status"] == "warn"
    assert "negotiated to 20 s" in results["session-timeout"]["reason"]
    assert "session timeout 20 s negotiated" in results["lease"]["reason"]

    code, results = doctor(ensemble.hosts, "--session-timeout", "1")
    assert results["session-timeout"]["status"] == "ok"
    assert results["lease"]["status"] == "warn"
    assert "shorter than realistic failure detection" in results["lease"]["reason"]


def test_four_letter_words_not_whitelisted(make_ensemble: Callable[..., LocalEnsemble]) -> None:
    ens = make_ensemble(1, extra_config={"4lw.commands.whitelist": "srvr"})
    code, results = doctor(ens.hosts)
    assert code == 0
    words = results["four-letter-words"]
    assert words["status"] == "warn"
    assert "refused conf" in words["reason"]
    assert "4lw.commands.whitelist" in words["fix"]
    assert results["session-timeout"]["status"] == "warn"  # the bounds come from conf
    assert results["ensemble-size"]["status"] == "warn"  # a single server
    assert results["quorum"]["status"] == "ok"


def test_bad_arguments_exit_2_with_one_line() -> None:
    for args in (
        ["doctor", "--lease-margin", "1.5"],
        ["doctor", "--session-timeout", "0"],
        ["doctor", "not-absolute"],
        ["doctor", "--auth", "nocolon"],
        ["doctor", "--hosts", "h:notaport"],
        ["doctor", "--no-such-option"],
    ):
        proc = zkelect(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stderr.startswith("zkelect: "), (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)


def test_help_prints() -> None:
    proc = zkelect("doctor", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "--session-timeout" in proc.stdout
