"""``zkelect run``'s /metrics on a real ensemble: the supervised command's series move as it
exits and is restarted (--on-exit restart), every zkelect family is present from the start,
and ``promtool check metrics`` accepts a real page.

One supervisor process does all the checks; it is stopped by PID at the end, pass or fail.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_support import RunProcess, http_get, promtool_complaints

from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble

pytestmark = pytest.mark.integration

EXIT_CODE = 3


def scrape(url: str) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """The page and its samples: (name, sorted labels) -> value."""
    status, page, _ = http_get(f"{url}/metrics")
    assert status == 200, page
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(page)
        for s in family.samples
    }
    return page, samples


def test_child_series_move_and_promtool_accepts_the_page(
    ensemble: LocalEnsemble, zk_path: str, tmp_path: Path
) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: apt-get install prometheus"
    started = time.time()
    args = [zk_path, "--hosts", ensemble.hosts, "--id", "metrics-1", "--http-port", "0"]
    args += ["--session-timeout", "2", "--on-exit", "restart"]
    run = RunProcess([*args, "--", "sh", "-c", f"exit {EXIT_CODE}"], log_path=tmp_path / "run.log")
    try:
        wait_for(lambda: run.url() is not None or run.proc.poll() is not None, 30)
        url = run.url()
        assert url, f"no URL (exit {run.proc.poll()}): {run.log()[-2000:]}"

        exits = ("zkelect_child_exits_total", (("code", str(EXIT_CODE)),))
        starts = ("zkelect_child_starts_total", ())
        # Elected alone, it starts the command; each exit (code 3) is followed by a restart.
        wait_for(lambda: scrape(url)[1].get(exits, 0) >= 2, 30)
        page, samples = scrape(url)
        assert samples[starts] >= samples[exits] >= 2
        assert samples[("zkelect_child_up", ())] in (0.0, 1.0)
        last_exit = samples[("zkelect_child_last_exit_timestamp_seconds", ())]
        assert started <= last_exit <= time.time()
        # Every other exit code has no series; the session counters exist at 0 from the start.
        assert {labels for name, labels in samples if name == exits[0]} == {exits[1]}
        for state in ("connected", "suspended", "lost"):
            key = ("zkelect_session_transitions_total", (("election", zk_path), ("state", state)))
            assert samples[key] == 0.0, key
        assert samples[("zkelect_is_leader", (("election", zk_path),))] == 1.0
        assert any(name == "zkelect_build_info" for name, _ in samples)

        assert promtool_complaints(promtool, page) == ""
    finally:
        code = run.stop()
    assert code == 0, run.log()[-2000:]
