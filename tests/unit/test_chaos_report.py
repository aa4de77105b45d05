"""The chaos report: report.json and a self-contained report.html over synthetic histories."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_chaos_checker import T0, RunBuilder, clean_run, node, silent_run

from chaos.checker import check
from chaos.history import FAULT_KINDS
from chaos.report import main, write_report

VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr", "area", "base", "source"}


class StrictParser(HTMLParser):
    """Collects text and attributes and checks every non-void element is closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.text: list[str] = []
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> StrictParser:
    parser = StrictParser()
    parser.feed(html)
    parser.close()
    assert parser.problems == []
    assert parser.stack == []
    return parser


def test_report_files_are_written_and_complete(tmp_path: Path) -> None:
    run_dir = clean_run().write_to(tmp_path)
    result = check(run_dir)
    paths = write_report(run_dir, result)
    assert paths.json == run_dir / "report.json" and paths.html == run_dir / "report.html"

    report = json.loads(paths.json.read_text())
    assert report["run"]["seed"] == 7
    assert report["summary"]["elections"] == 3
    assert report["summary"]["violations"] == {f"I{n}": 0 for n in range(1, 7)}
    assert report["violations"] == []

    page = parse(paths.html.read_text())
    text = " ".join(page.text)
    titles = text  # <title> tooltips are text too
    for kind in ("kill-leader", "pause-leader-long"):
        assert kind in text
    for epoch in (100, 200, 300):
        assert f"epoch {epoch}" in titles
    assert "I1-I6 hold: 0 violations" in text
    assert "stale writes rejected" in text
    assert "svg" in page.tags and "rect" in page.tags
    # Self-contained: no script, no external resource.
    assert "script" not in page.tags and "link" not in page.tags
    assert not [v for k, v in page.attrs if k in ("src", "href") and v]


def test_violations_are_listed(tmp_path: Path) -> None:
    b = clean_run()
    b.elected(40.0, "c1", 1, 150, "n3")
    b.revoked(40.5, "c1", 1, 150)
    run_dir = b.write_to(tmp_path)
    result = check(run_dir)
    report = json.loads(write_report(run_dir, result).json.read_text())
    assert [v["invariant"] for v in report["violations"]] == ["I2"]
    assert report["violations"][0]["at_s"] == pytest.approx(40.0)
    text = " ".join(parse((run_dir / "report.html").read_text()).text)
    assert "1 violation(s): I1 = 0, I2 = 1" in text


def test_text_from_the_history_is_escaped(tmp_path: Path) -> None:
    b = clean_run()
    b.revoked(40.0, "c0", 1, 300, '<script>alert(1)</script> & "quotes"')
    b.fault(9, "<b>odd-kind</b>", 45.0, 46.0, ("<i>c0</i>",))
    run_dir = b.write_to(tmp_path)
    html = write_report(run_dir, check(run_dir)).html.read_text()
    assert "<script>" not in html and "<b>odd" not in html and "<i>c0" not in html
    text = " ".join(parse(html).text)
    assert "<b>odd-kind</b>" in text  # shown, as text


def test_a_long_run_with_hundreds_of_faults_stays_in_bounds(tmp_path: Path) -> None:
    """20 minutes, a fault every 3 s: strips of 5 minutes, every fault drawn, lanes for overlaps."""
    b = RunBuilder(duration_s=1200.0, ended_t=T0 + 1200.0, candidates=5)
    for slot in range(5):
        b.start(0.0, f"c{slot}", 0, f"0x{slot}0")
    epoch = 100
    for index in range(400):
        t = 1.0 + index * 3.0
        kind = FAULT_KINDS[index % len(FAULT_KINDS)]
        b.fault(index + 1, kind, t, t + 2.5 + (index % 3), ("c1",))  # some overlap the next
        epoch += 7
        leader = f"c{index % 5}"
        b.leader(t + 0.1, f"n{index}", epoch)
        b.elected(t + 0.2, leader, 0, epoch, f"n{index}")
        b.revoked(t + 2.9, leader, 0, epoch)
    b.final(1199.0, {node("n0"): "0x00"}, ["0x00"], live_candidates=1)
    run_dir = b.write_to(tmp_path)
    result = check(run_dir)
    paths = write_report(run_dir, result)
    html = paths.html.read_text()
    page = parse(html)
    assert page.tags.count("svg") == 4  # 1200 s in strips of at most 300 s
    assert html.count('class="fault"') >= 400
    assert len(html) < 5_000_000
    text = " ".join(page.text)
    for kind in FAULT_KINDS:
        assert kind in text


def test_the_command_checks_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = clean_run().write_to(tmp_path / "good")
    assert main([str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "seed 7: 2 faults, 3 elections, 4 writes accepted, 1 stale writes rejected" in out
    assert (run_dir / "report.html").is_file()

    b = clean_run()
    b.elected(40.0, "c1", 1, 150, "n3")
    assert main([str(b.write_to(tmp_path / "bad"))]) == 1
    assert "I2 " in capsys.readouterr().out

    assert main([str(tmp_path / "nowhere")]) == 1
    assert "not a directory" in capsys.readouterr().err


def test_a_candidate_stranded_on_a_silent_member_is_reported(tmp_path: Path) -> None:
    run_dir = silent_run().write_to(tmp_path)  # c0 never leaves the silent member
    result = check(run_dir)
    report = json.loads(write_report(run_dir, result).json.read_text())
    assert [v["invariant"] for v in report["violations"]] == ["I6"]
    silent = report["summary"]["silent_member"]
    assert (silent["judged"], silent["violations"]) == (1, 1)
    assert silent["list"][0]["process"] == "c0#0" and silent["list"][0]["status"] == "violation"
    text = " ".join(parse((run_dir / "report.html").read_text()).text)
    assert "Candidates on a silent member (I6)" in text
    assert "0 of 1 judged candidates in time" in text
    assert "stuck: it never connected again" in text
