"""Shared by the CLI argument tests: an environment with no ZKELECT_* variable but an
unreachable ensemble, and a runner of ``zkelect`` in-process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from zkelect.ops.cli.main import main

UNREACHABLE = "127.0.0.1:9"  # never contacted: every case fails before connecting


def clean_cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ZKELECT_* variable from the caller's shell; an unreachable ensemble; a dev
    ensemble directory of the test's own."""
    for name in list(os.environ):
        if name.startswith("ZKELECT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ZKELECT_HOSTS", UNREACHABLE)
    monkeypatch.setenv("ZKELECT_ENSEMBLE_DIR", str(tmp_path / "ensemble"))


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``zkelect *argv`` in-process: its exit code, stdout and stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
