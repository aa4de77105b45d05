"""Real processes for the observability tests: candidate processes (``zkelect serve``,
``zkelect run``) and Debian's Prometheus server, each started here and stopped by PID.

Every process is forked from zkelect.testing.ensemble's spawner thread with PR_SET_PDEATHSIG, as the
ZooKeeper members are, so a test run that is itself killed leaves no orphans behind; the
fixtures' ``finally`` blocks stop them by PID in every other case.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from zkelect._lifeline import popen_tied

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A free loopback port (the kernel's choice), for servers that need it in a config file."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str, dict[str, str]]:
    """(status, body, headers) of a GET; an HTTP error status is an answer, not an exception."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode(), dict(exc.headers)


def http_json(url: str, timeout: float = 5.0) -> tuple[int, Any]:
    status, body, _ = http_get(url, timeout)
    return status, json.loads(body)


def _popen(cmd: list[str], **kw: Any) -> subprocess.Popen[bytes]:
    return popen_tied(cmd, stdin=subprocess.DEVNULL, start_new_session=True, **kw)


def stop_process(proc: subprocess.Popen[bytes], grace: float = 5.0) -> int:
    """SIGTERM, then SIGKILL after ``grace`` seconds; the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class CandidateProcess:
    """``zkelect serve`` as a child process, on a free port it reports itself."""

    def __init__(
        self, hosts: str, path: str, candidate_id: str, *, session_timeout: float, log_dir: Path
    ) -> None:
        self.candidate_id = candidate_id
        self.log_path = log_dir / f"{candidate_id}.stderr"
        cmd = [
            sys.executable,
            "-m",
            "zkelect.ops.cli.main",
            "serve",
            "--hosts",
            hosts,
            "--path",
            path,
            "--id",
            candidate_id,
            "--port",
            "0",
            "--session-timeout",
            str(session_timeout),
        ]
        # The repository first, so the child runs this checkout's zkelect even if not installed.
        pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": pythonpath}
        with open(self.log_path, "wb") as stderr:
            self.proc = _popen(cmd, stdout=subprocess.PIPE, stderr=stderr, cwd=REPO, env=env)
        self.url = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def wait_listening(self, timeout: float) -> str:
        """Read the ``listening on URL`` line, with a deadline; the URL."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.proc.poll() is not None:
                    raise AssertionError(
                        f"candidate {self.candidate_id} did not report listening within "
                        f"{timeout:g}s (exit code {self.proc.poll()}): {self.stderr()}"
                    )
                if sel.select(min(remaining, 0.2)):
                    chunk = os.read(self.proc.stdout.fileno(), 1)
                    if not chunk:
                        continue
                    line += chunk
        text = line.decode().strip()
        assert text.startswith("listening on http://127.0.0.1:"), text
        self.url = text.split()[-1]
        return self.url

    def stderr(self) -> str:
        try:
            return self.log_path.read_text()[-2000:]
        except OSError:
            return ""

    def stop(self) -> int:
        code = stop_process(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code


class RunProcess:
    """``zkelect run ARGS`` as a child process; its stderr goes to a log file, where it says
    the URL its HTTP server (``--http-port 0``: a free port) listens on."""

    def __init__(self, args: list[str], *, log_path: Path) -> None:
        self.log_path = log_path
        cmd = [sys.executable, "-m", "zkelect.ops.cli.main", "run", *args]
        pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": pythonpath}
        env.pop("ZKELECT_HOSTS", None)
        with open(log_path, "wb") as stderr:
            self.proc = _popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, cwd=REPO, env=env)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def url(self) -> str | None:
        """The HTTP server's URL once the supervisor has said it, else None."""
        match = re.search(r"http://127\.0\.0\.1:\d+", self.log())
        return match.group(0) if match else None

    def stop(self) -> int:
        return stop_process(self.proc, grace=15.0)


def promtool_complaints(promtool: str, page: str) -> str:
    """What ``promtool check metrics`` says about an exposition page ("" when it is clean)."""
    checked = subprocess.run(
        [promtool, "check", "metrics"],
        input=page,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    said = (checked.stdout + checked.stderr).strip()
    return said or ("" if checked.returncode == 0 else f"exit {checked.returncode}")


def find_prometheus() -> tuple[str, str]:
    """Paths of ``prometheus`` and ``promtool``; a clear failure when they are missing."""
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if prometheus is None or promtool is None:
        pytest.fail(
            "Prometheus is not installed (prometheus and promtool must be on PATH): "
            "apt-get install prometheus (Debian/Ubuntu), or run scripts/setup.sh as root",
            pytrace=False,
        )
    return prometheus, promtool


class Prometheus:
    """A real Prometheus server on loopback scraping ``targets`` every second."""

    def __init__(self, binary: str, workdir: Path, targets: list[str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  scrape_timeout: 1s\n"
            "  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            "  - job_name: zkelect\n"
            "    static_configs:\n"
            f"      - targets: {json.dumps(targets)}\n"
        )
        self.log_path = workdir / "prometheus.log"
        cmd = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        with open(self.log_path, "wb") as log:
            self.proc = _popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text()[-3000:]
        except OSError:
            return ""

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"prometheus exited with code {self.proc.returncode}: {self.log_tail()}"
            )
        try:
            return http_get(f"{self.url}/-/ready", timeout=1.0)[0] == 200
        except OSError:
            return False

    def query(self, expr: str) -> list[tuple[dict[str, str], float]]:
        """An instant query's vector result: (labels, value) per series."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        status, body = http_json(url)
        assert status == 200 and body["status"] == "success", body
        assert body["data"]["resultType"] == "vector", body
        return [(item["metric"], float(item["value"][1])) for item in body["data"]["result"]]

    def scalar(self, expr: str) -> float | None:
        """The single value of an aggregating query, or None while it has no data."""
        result = self.query(expr)
        assert len(result) <= 1, result
        return result[0][1] if result else None

    def stop(self) -> int:
        return stop_process(self.proc, grace=10.0)


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL: the process gets no chance to resign or close its session."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
