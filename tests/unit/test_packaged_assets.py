"""The alert rules, their unit tests, the Grafana dashboard and the LICENSE ship in the wheel,
and ``zkelect assets DIR`` writes them out from an installed package (not from a checkout).

One wheel is built per module (``pip wheel --no-deps``, from a copy of the sources so the
checkout gets no build/ directory), unpacked, and the CLI is run from the unpacked wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_observability_assets import ASSETS_DIR, run_promtool

from zkelect.ops.cli.assets import ASSET_FILES

REPO = Path(__file__).resolve().parents[2]
# What `pip wheel .` reads: pyproject.toml's readme, the license file, the package.
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "zkelect")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(source, src / name)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(src), "-w", str(root)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = root.glob("zkelect-*.whl")
    yield built


@pytest.fixture(scope="module")
def unpacked(wheel: Path) -> Path:
    target = wheel.parent / "unpacked"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    return target


def zkelect_from(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``zkelect ARGS`` running the package in ``site`` (dependencies from this venv)."""
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = (
        "import sys, zkelect; "
        f"assert zkelect.__file__.startswith({str(site)!r}), zkelect.__file__; "
        "from zkelect.ops.cli.main import main; sys.exit(main(sys.argv[1:]))"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=site,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_wheel_holds_the_assets_and_the_license(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for name in ASSET_FILES:
            member = f"zkelect/ops/assets/{name}"
            assert member in names, f"{member} is not in {wheel.name}"
            assert archive.read(member) == (ASSETS_DIR / name).read_bytes()
        licenses = [n for n in names if n.endswith("/LICENSE") and ".dist-info/" in n]
        assert licenses, f"no LICENSE in {wheel.name}'s dist-info"
        text = archive.read(licenses[0]).decode()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text


def test_zkelect_assets_writes_them_and_refuses_to_overwrite(
    unpacked: Path, tmp_path: Path
) -> None:
    out = tmp_path / "rules-and-dashboard"
    result = zkelect_from(unpacked, "assets", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(out / name) for name in ASSET_FILES]
    for name in ASSET_FILES:
        assert (out / name).read_bytes() == (ASSETS_DIR / name).read_bytes()
    # What was written loads as is (its unit tests are the packaged ones, run elsewhere).
    checked = run_promtool("check", "rules", out / "zkelect.rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    (out / "zkelect.json").write_text("{}")  # a local edit is not overwritten silently
    again = zkelect_from(unpacked, "assets", str(out))
    assert again.returncode == 1
    assert again.stdout == ""
    assert again.stderr.count("\n") == 1 and "Traceback" not in again.stderr
    assert again.stderr.startswith(f"zkelect: {out / 'zkelect.rules.yml'}, ")
    assert again.stderr.rstrip().endswith("already exist: pass --force to overwrite")
    assert (out / "zkelect.json").read_text() == "{}"

    forced = zkelect_from(unpacked, "assets", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert (out / "zkelect.json").read_bytes() == (ASSETS_DIR / "zkelect.json").read_bytes()

    not_a_dir = zkelect_from(unpacked, "assets", str(out / "zkelect.json"))
    assert not_a_dir.returncode == 2
    assert (
        not_a_dir.stderr == f"zkelect: DIR {out / 'zkelect.json'} exists and is not a directory\n"
    )
