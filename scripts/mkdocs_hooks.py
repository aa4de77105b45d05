"""MkDocs hooks for the zkelect docs site (``hooks:`` in mkdocs.yml).

* ``cli.md``: the CLI reference, generated from the typer app at build time by
  ``scripts/gen_cli_reference.py``, so it covers exactly the commands the app has.
* ``benchmarks.md``: ``bench/README.md``, which lives next to the scripts it describes
  (outside ``docs/``). Its relative links are rewritten for the site: ``../docs/X`` becomes
  ``X``; files under ``bench/`` it links to (plots, results) are published under
  ``bench/``; anything else is left as is, so ``mkdocs build --strict`` reports it.

Both pages exist only in the built site; ``docs/`` holds no generated copy.
"""

from __future__ import annotations

import importlib.util
import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
CLI_PAGE = "cli.md"
BENCH_PAGE = "benchmarks.md"
_LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)((?:\s+\"[^\"]*\")?\))")


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "zkelect_gen_cli_reference", ROOT / "scripts" / "gen_cli_reference.py"
    )
    if spec is None or spec.loader is None:  # pragma: no cover - the file is in this repo
        raise RuntimeError("scripts/gen_cli_reference.py cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _replace(files: Files, config: Any, src_uri: str, content: str | bytes) -> None:
    existing = files.get_file_from_path(src_uri)
    if existing is not None:
        files.remove(existing)
    files.append(File.generated(config, src_uri, content=content))


def bench_page(text: str) -> tuple[str, dict[str, Path]]:
    """bench/README.md rewritten for the site, and the bench files it links to."""
    extra: dict[str, Path] = {}

    def fix(match: re.Match[str]) -> str:
        target = match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith(("#", "/")):
            return match.group(0)  # absolute URL, anchor, or site-absolute
        path, hash_, anchor = target.partition("#")
        resolved = posixpath.normpath(posixpath.join("bench", path))
        if resolved.startswith("docs/"):
            new = resolved[len("docs/") :]
        elif resolved.startswith("bench/") and (ROOT / resolved).is_file():
            extra[resolved] = ROOT / resolved
            new = resolved
        else:
            return match.group(0)
        return f"{match.group(1)}{new}{hash_}{anchor}{match.group(3)}"

    return _LINK.sub(fix, text), extra


def on_files(files: Files, config: Any, **_: Any) -> Files:
    _replace(files, config, CLI_PAGE, _generator().render())
    readme = BENCH_DIR / "README.md"
    # `make bench` writes docs/benchmarks.md (figures and plots): publish that when present.
    if readme.is_file() and not (ROOT / "docs" / BENCH_PAGE).is_file():
        page, extra = bench_page(readme.read_text(encoding="utf-8"))
        _replace(files, config, BENCH_PAGE, page)
        for src_uri, source in extra.items():
            _replace(files, config, src_uri, source.read_bytes())
    return files
