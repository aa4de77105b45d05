"""The docs site builds with ``mkdocs build --strict`` (broken links, anchors and nav entries
fail it), and its CLI reference, generated from the typer app at build time, covers every
command the app has."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _require_mkdocs() -> None:
    missing = [m for m in ("mkdocs", "material") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not installed: pip install -e '.[test]' "
            "(the test extra brings mkdocs and mkdocs-material)",
            pytrace=False,
        )


gen = _load("gen_cli_reference")


def test_reference_covers_every_command_and_option() -> None:
    import typer

    from zkelect.ops.cli.main import app

    root = typer.main.get_command(app)
    text = gen.render(root)
    paths = gen.command_paths(root)
    assert "zkelect doctor" in paths
    assert len(paths) == len(set(paths))
    for path, (command, ctx) in zip(paths, gen._walk(root, "zkelect"), strict=True):
        assert f"## {path} {{#{gen._anchor(path)}}}" in text, path
        for param in command.get_params(ctx):
            for opt in param.opts if param.param_type_name == "option" else ():
                assert f"`{opt}`" in text, (path, opt)


def test_reference_renders_help_text_safely() -> None:
    assert gen._text("connect string 'h1:2181\\[/chroot]'") == "connect string 'h1:2181[/chroot]'"
    assert gen._text("a <b> `x <y>`") == "a &lt;b&gt; `x <y>`"
    assert gen._cell("a | b\nc") == "a \\| b c"


def test_bench_page_links_are_rewritten_for_the_site() -> None:
    _require_mkdocs()
    hooks = _load("mkdocs_hooks")
    page, extra = hooks.bench_page(
        "[fencing](../docs/fencing.md#why) [src](handover.py) [web](https://example.org) "
        "[gone](../nowhere.md)"
    )
    assert "[fencing](fencing.md#why)" in page
    assert "[src](bench/handover.py)" in page and extra == {
        "bench/handover.py": REPO / "bench" / "handover.py"
    }
    assert "[web](https://example.org)" in page
    assert "[gone](../nowhere.md)" in page  # left for --strict to report


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    _require_mkdocs()
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--clean",
            "--config-file",
            str(REPO / "mkdocs.yml"),
            "--site-dir",
            str(site),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}{proc.stderr}"
    reference = (site / "cli" / "index.html").read_text(encoding="utf-8")
    for path in gen.command_paths():
        assert f'id="{gen._anchor(path)}"' in reference, path
    assert (site / "benchmarks" / "index.html").is_file()
