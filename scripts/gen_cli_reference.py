"""Generate the CLI reference (Markdown) from the ``zkelect`` typer app.

Walks ``typer.main.get_command(zkelect.ops.cli.main.app)`` recursively and writes, for every
command: its usage line, its help, its arguments and its options (type, default,
environment variable). The security options, which every connecting command takes alike
(zkelect/ops/cli/security_options.py), are described once, in their own section. The docs
site builds it at build time (``scripts/mkdocs_hooks.py``), so the reference always covers
the commands the app has; nothing is committed.

    python scripts/gen_cli_reference.py            # print the Markdown
    python scripts/gen_cli_reference.py -o cli.md  # write it to a file
"""

from __future__ import annotations

import argparse
import enum
import inspect
import re
import sys
import typing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

HEADER = """# CLI reference

<!-- Generated from the typer app by scripts/gen_cli_reference.py when the docs are built.
     Do not edit: change the commands' help instead. -->

Every command takes the ZooKeeper connect string from `--hosts` or the `ZKELECT_HOSTS`
environment variable (given neither: the dev ensemble `zkelect ensemble up` runs, if any,
else `127.0.0.1:2181`), and every option that configures shows its environment variable.
Exit codes: `0` success, `1` operational
failure (no quorum, no permission, timeout, a failed check), `2` usage error. Errors are one
line on stderr, never a traceback.
"""

SECURITY_PANEL = "Security"  # the help panel of the options in zkelect/ops/cli/security_options.py


def load_app() -> Any:
    """The root click command of ``zkelect`` (imports zkelect from this checkout)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import typer

    from zkelect.ops.cli.main import app

    return typer.main.get_command(app)


def _text(value: object) -> str:
    """Help text for Markdown: typer's rich escapes undone, ``\\b`` markers dropped, HTML
    and table syntax escaped outside code spans."""
    text = inspect.cleandoc(str(value or "")).replace("\b", "")
    text = text.replace("\\[", "[")
    parts = re.split(r"(`[^`]*`)", text)
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "".join(parts)


def _cell(value: object) -> str:
    return " ".join(_text(value).split()).replace("|", "\\|")


def _anchor(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")


def _walk(command: Any, name: str, parent: Any = None) -> list[tuple[Any, Any]]:
    """``(command, context)`` for ``command`` and every subcommand, depth first, in the
    order the app lists them."""
    ctx = command.context_class(command, info_name=name, parent=parent)
    found = [(command, ctx)]
    list_commands = getattr(command, "list_commands", None)
    if list_commands is not None:
        for sub_name in list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            if sub is not None and not getattr(sub, "hidden", False):
                found.extend(_walk(sub, sub_name, ctx))
    return found


def _default(param: Any) -> str:
    if getattr(param, "is_flag", False) and not getattr(param, "secondary_opts", None):
        return ""
    if getattr(param, "show_default", None) is False or param.required:
        return ""
    value = param.default
    if value is None or callable(value) or value == () or value == []:
        return ""
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if hasattr(value, "value"):  # an Enum
        value = value.value
    return f"`{value}`"


_TYPE_NAMES = {"str": "text", "int": "integer", "float": "float", "Path": "path"}


def _type(param: Any, *, metavar: bool = True) -> str:
    """A short type label; works with click's ``param.type`` (typer < 0.20) and typer's own
    ``type_descriptor`` (typer >= 0.20)."""
    if getattr(param, "is_flag", False):
        return "flag"
    if metavar and getattr(param, "metavar", None):
        return f"`{param.metavar}`"
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    choices = getattr(getattr(param, "type", None), "choices", None)
    if choices is None and inspect.isclass(annotation) and issubclass(annotation, enum.Enum):
        choices = list(annotation)
    if choices:
        return " \\| ".join(f"`{getattr(c, 'value', c)}`" for c in choices)
    repeat = ""
    if typing.get_origin(annotation) in (list, tuple, set) and typing.get_args(annotation):
        annotation = typing.get_args(annotation)[0]
        repeat = " (repeatable)" if param.param_type_name == "option" else ""
    if annotation is not None:
        name = getattr(annotation, "__name__", str(annotation))
        name = _TYPE_NAMES.get(name, name.lower()) + repeat
    else:
        name = str(getattr(getattr(param, "type", None), "name", "") or "").lower()
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    bounds = (f" &ge; {low}" if low is not None else "") + (
        f" &le; {high}" if high is not None else ""
    )
    return f"{name}{bounds}" if name else ""


def _is_security(param: Any) -> bool:
    return getattr(param, "rich_help_panel", None) == SECURITY_PANEL


def _option_rows(options: list[Any]) -> list[str]:
    lines = [
        "| Option | Type | Default | Description |",
        "|---|---|---|---|",
    ]
    for p in options:
        names = ", ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts])
        described = _cell(getattr(p, "help", "") or "")
        envvar = p.envvar
        if envvar:
            envs = [envvar] if isinstance(envvar, str) else list(envvar)
            env_note = "env " + ", ".join(f"`{e}`" for e in envs)
            if env_note.replace("`", "") not in described:
                described = f"{described} ({env_note})" if described else env_note
        if p.required:
            described = f"**Required.** {described}"
        lines.append(f"| {names} | {_type(p)} | {_default(p)} | {described} |")
    return [*lines, ""]


def _security_section(commands: list[tuple[Any, Any]]) -> list[str]:
    """The security options once, as the commands that take them declare them."""
    seen: dict[str, Any] = {}
    for command, ctx in commands:
        for param in command.get_params(ctx):
            if param.param_type_name == "option" and _is_security(param):
                seen.setdefault(param.name, param)
    if not seen:
        return []
    return [
        "## Security options {#security-options}",
        "",
        "Every command that connects to ZooKeeper takes these, with the same names and "
        "meaning; `--acl-writer` and `--acl-no-read` only the commands that join an election "
        "(`run`, `serve`). A bad value is a usage error (exit 2) naming the option.",
        "",
        *_option_rows(list(seen.values())),
    ]


def _argument_label(param: Any) -> str:
    metavar = getattr(param, "metavar", None)
    return str(metavar) if metavar else str(param.name or "").upper()


def _usage(command: Any, ctx: Any) -> str:
    """``zkelect doctor [OPTIONS] [PATH]``, built from the parameters (typer >= 0.20 prints
    arguments without a metavar as ``{name}`` in its own usage line)."""
    pieces = [ctx.command_path, "[OPTIONS]"]
    for param in command.get_params(ctx):
        if param.param_type_name != "argument":
            continue
        label = _argument_label(param)
        if param.nargs == -1 and not label.endswith("..."):
            label += "..."
        pieces.append(label if param.required else f"[{label}]")
    if getattr(command, "list_commands", None) is not None:
        pieces.append("COMMAND [ARGS]...")
    return " ".join(pieces)


def _section(command: Any, ctx: Any) -> list[str]:
    path = ctx.command_path
    lines = [f"## {path} {{#{_anchor(path)}}}", ""]
    lines += ["```", _usage(command, ctx), "```", ""]
    help_text = _text(command.help or command.short_help or "")
    if help_text:
        lines += [help_text, ""]
    epilog = _text(getattr(command, "epilog", "") or "")
    params = [p for p in command.get_params(ctx) if not getattr(p, "hidden", False)]
    arguments = [p for p in params if p.param_type_name == "argument"]
    options = [p for p in params if p.param_type_name == "option" and not _is_security(p)]
    secured = [p.opts[0] for p in params if p.param_type_name == "option" and _is_security(p)]
    if arguments:
        lines += [
            "**Arguments**",
            "",
            "| Argument | Type | Required | Description |",
            "|---|---|---|---|",
        ]
        for p in arguments:
            label = _argument_label(p)
            kind = _type(p) if not getattr(p, "metavar", None) else _type(p, metavar=False)
            lines.append(
                f"| `{label}` | {kind} | {'yes' if p.required else 'no'} | "
                f"{_cell(getattr(p, 'help', '') or '')} |"
            )
        lines.append("")
    if options:
        lines += ["**Options**", "", *_option_rows(options)]
    if secured:
        acl = [f"`{o}`" for o in secured if o.startswith("--acl-")]
        also = f", {' and '.join(acl)} included" if acl else ""
        lines += [f"Also the [security options](#security-options){also}.", ""]
    subcommands = []
    list_commands = getattr(command, "list_commands", None)
    if list_commands is not None:
        for sub_name in list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            if sub is None or getattr(sub, "hidden", False):
                continue
            summary = _cell(sub.get_short_help_str(limit=120))
            sub_path = f"{path} {sub_name}"
            subcommands.append(f"| [`{sub_name}`](#{_anchor(sub_path)}) | {summary} |")
    if subcommands:
        lines += ["**Commands**", "", "| Command | Summary |", "|---|---|", *subcommands, ""]
    if epilog:
        lines += [epilog, ""]
    return lines


def render(command: Any = None, prog_name: str = "zkelect") -> str:
    """The whole reference as Markdown."""
    root = load_app() if command is None else command
    commands = _walk(root, prog_name)
    lines = [HEADER, *_security_section(commands)]
    for cmd, ctx in commands:
        lines += _section(cmd, ctx)
    return "\n".join(lines).rstrip() + "\n"


def command_paths(command: Any = None, prog_name: str = "zkelect") -> list[str]:
    """Every command path the app has, e.g. ``["zkelect", "zkelect doctor", ...]``."""
    root = load_app() if command is None else command
    return [ctx.command_path for _, ctx in _walk(root, prog_name)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    text = render()
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
