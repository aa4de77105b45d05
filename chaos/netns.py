"""One network namespace per chaos candidate, so a partition hits that candidate alone.

Candidate ``i`` lives in namespace ``zkc-<runner pid>-<i>``, joined to the root namespace by
a veth pair: host side ``10.231.<b+i>.1/30``, namespace side ``10.231.<b+i>.2/30`` (``b`` is 0
unless another run already uses those addresses). The runner's TCP proxies listen on the
host side; taking the host side of the link down partitions the candidate from the whole
ensemble while its process keeps running.

Needs root and iproute2. Namespaces left behind by a runner that died are removed at the
next start (their name carries the runner's pid); deleting a namespace also deletes the
veth pair inside it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

__all__ = ["CandidateNet", "NetLab", "netns_available"]

_NAME = re.compile(r"^zkc-(\d+)-(\d+)$")
_BLOCK = 8  # third-octet block per run: up to 8 candidates


def netns_available() -> bool:
    """Root, iproute2, and a namespace can actually be created here."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    probe = f"zkc-{os.getpid()}-probe"
    try:
        _ip("netns", "add", probe)
    except subprocess.CalledProcessError:
        return False
    with contextlib.suppress(subprocess.CalledProcessError):
        _ip("netns", "del", probe)
    return True


def _ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=20)
    return done.stdout


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class CandidateNet:
    """The namespace, link and addresses of one candidate."""

    index: int
    namespace: str
    host_if: str
    ns_if: str
    host_ip: str
    ns_ip: str

    def exec_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.namespace]


class NetLab:
    """The namespaces of one run; ``teardown()`` is idempotent and never raises."""

    def __init__(self, count: int, runner_pid: int | None = None) -> None:
        self.count = count
        self.runner_pid = os.getpid() if runner_pid is None else runner_pid
        self.nets: list[CandidateNet] = []
        self.removed_stale: list[str] = []

    @staticmethod
    def remove_stale() -> list[str]:
        """Delete ``zkc-<pid>-*`` namespaces whose runner is dead; their names."""
        removed: list[str] = []
        for line in _ip("netns", "list").splitlines():
            name = line.split()[0] if line.split() else ""
            match = _NAME.match(name)
            if match is None or _pid_alive(int(match.group(1))):
                continue
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("netns", "del", name)
                removed.append(name)
        return removed

    def _free_block(self) -> int:
        used = set(re.findall(r"inet 10\.231\.(\d+)\.", _ip("-4", "-o", "addr")))
        for base in range(0, 256 - self.count, _BLOCK):
            if not any(str(base + i) in used for i in range(self.count)):
                return base
        raise RuntimeError("no free 10.231.x.0/30 block for the chaos namespaces")

    def setup(self) -> list[CandidateNet]:
        self.removed_stale = self.remove_stale()
        base = self._free_block()
        try:
            for i in range(self.count):
                net = CandidateNet(
                    index=i,
                    namespace=f"zkc-{self.runner_pid}-{i}",
                    host_if=f"zh{self.runner_pid}{i}"[-15:],
                    ns_if=f"zn{self.runner_pid}{i}"[-15:],
                    host_ip=f"10.231.{base + i}.1",
                    ns_ip=f"10.231.{base + i}.2",
                )
                self.nets.append(net)
                _ip("netns", "add", net.namespace)
                _ip("link", "add", net.host_if, "type", "veth", "peer", "name", net.ns_if)
                _ip("link", "set", net.ns_if, "netns", net.namespace)
                _ip("addr", "add", f"{net.host_ip}/30", "dev", net.host_if)
                _ip("link", "set", net.host_if, "up")
                inside = ["netns", "exec", net.namespace, "ip"]
                _ip(*inside, "addr", "add", f"{net.ns_ip}/30", "dev", net.ns_if)
                _ip(*inside, "link", "set", net.ns_if, "up")
                _ip(*inside, "link", "set", "lo", "up")
        except BaseException:
            self.teardown()
            raise
        return self.nets

    def set_link(self, index: int, up: bool) -> None:
        """Partition (``up=False``) or heal candidate ``index``'s link to the root namespace."""
        _ip("link", "set", self.nets[index].host_if, "up" if up else "down")

    def teardown(self) -> None:
        for net in self.nets:
            with contextlib.suppress(Exception):
                _ip("netns", "del", net.namespace)
            with contextlib.suppress(Exception):  # normally gone with the namespace
                _ip("link", "del", net.host_if)
        self.nets = []
