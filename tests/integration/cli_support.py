"""What the CLI and HTTP tests share: JSON parsed the way jq and JavaScript would need it,
and ``zkelect`` processes whose stderr lines a test can wait on."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zkelect.ops.json_ids import MAX_SAFE_INTEGER

__all__ = ["CliProcess", "cli_env", "loads_strict"]

ROOT = Path(__file__).resolve().parents[2]


def _exact_int(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        raise AssertionError(f"JSON integer {text} exceeds 2^53: jq and JavaScript round it")
    return value


def loads_strict(text: str) -> Any:
    """``json.loads`` that fails on any integer a double cannot hold exactly."""
    return json.loads(text, parse_int=_exact_int)


def cli_env() -> dict[str, str]:
    """This environment for a ``zkelect`` process, without any ZKELECT_* variable: every
    option reads one, so a variable set where the tests run would change what they test."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("ZKELECT_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


class CliProcess:
    """One ``zkelect ARGS...`` process (``python -m zkelect.ops.cli.main``); a thread
    collects its stderr lines. The test stops it by PID (subclasses say how)."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "zkelect.ops.cli.main", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        self.pid = self.proc.pid
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_until(self, found: Callable[[list[str]], Any], what: str, timeout: float = 30) -> Any:
        """``found(lines)`` once it is truthy (waiting for more lines up to ``timeout``)."""
        with self._cond:
            result = self._cond.wait_for(lambda: found(self.lines), timeout)
        assert result, f"no {what} within {timeout}s:\n" + "\n".join(self.lines)
        return result

    def wait_line(self, pattern: str, timeout: float = 20.0, count: int = 1) -> re.Match[str]:
        """The ``count``-th line matching ``pattern`` (waiting for it)."""
        regex = re.compile(pattern)

        def found(lines: list[str]) -> re.Match[str] | None:
            matches = [m for m in map(regex.search, lines) if m]
            return matches[count - 1] if len(matches) >= count else None

        match: re.Match[str] = self.wait_until(found, f"line /{pattern}/ #{count}", timeout)
        return match

    def output(self) -> str:
        self._reader.join(timeout=5)
        return "\n".join(self.lines)

    def close(self) -> None:
        """After the process ended: the reader and the pipe."""
        self._reader.join(timeout=10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
