"""How the command-line tools write their logs: timestamped lines, text or JSON, no secrets.

The library logs lifecycle events as plain records with their facts attached
(zkelect/_logs.py); ``zkelect run``'s supervisor logs its own (child started, signalled,
exited) the same way on ``zkelect.run``. :func:`configure` puts one handler on the root
logger that writes each record as one line:

* ``text``: ``2026-12-06T06:30:00.123+00:00 INFO zkelect run node-a: elected: ...``, the
  time in ISO 8601 with milliseconds and the local zone; a record from outside zkelect
  (kazoo) names its logger: ``... DEBUG zkelect run node-a: [kazoo.client] Sending ...``;
* ``json``: one object per line with ``time level logger election candidate event epoch
  epoch_hex session reason message``, plus ``member node pid code signal`` where the record
  has them. 64-bit ids are strings (zkelect/ops/json_ids.py): ``session`` is ``"0x…"``,
  ``epoch`` the decimal, ``epoch_hex`` the hex.

Every line passes through :func:`zkelect._logs.redact` last, whatever logged it: no session
password, digest or SASL credential, nor any value given in ``secrets``, is ever written.

Verbosity: 0 shows zkelect's records from INFO on and kazoo's not at all (the events say what
matters); 1 adds zkelect's DEBUG and kazoo's INFO (its connection attempts); 2 adds kazoo's
DEBUG wire log (redacted).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TextIO

from zkelect._logs import FIELDS, SecretFilter, redact
from zkelect.ops.json_ids import epoch_fields, session_text
from zkelect.security import ClientSecurity

__all__ = [
    "LOG_FORMATS",
    "ContextFilter",
    "DropEvents",
    "JsonFormatter",
    "TextFormatter",
    "configure",
    "iso_time",
    "secrets_of",
]

LOG_FORMATS = ("text", "json")
#: Environment variables whose values are secrets wherever they appear.
_SECRET_ENV = ("ZKELECT_SASL_PASSWORD", "ZKELECT_AUTH", "ZKELECT_TLS_KEY_PASSWORD")
#: The event fields (zkelect/_logs.py FIELDS) a JSON line has only when the record does.
_OPTIONAL = tuple(
    name for name in FIELDS if name not in ("election", "candidate", "epoch", "session", "reason")
)


def iso_time(created: float) -> str:
    """``created`` (a record's time) as ISO 8601 with milliseconds and the local zone."""
    return datetime.fromtimestamp(created).astimezone().isoformat(timespec="milliseconds")


def _own(record: logging.LogRecord) -> bool:
    return record.name == "zkelect" or record.name.startswith("zkelect.")


class TextFormatter(logging.Formatter):
    """``TIME LEVEL PREFIX: message``; ``prefix`` names the program (``zkelect run ID``)."""

    def __init__(self, prefix: str, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.prefix = prefix
        self.secrets = list(secrets)

    def format(self, record: logging.LogRecord) -> str:
        origin = "" if _own(record) else f"[{record.name}] "
        line = (
            f"{iso_time(record.created)} {record.levelname} {self.prefix}: "
            f"{origin}{record.getMessage()}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line, self.secrets)


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = list(secrets)

    def format(self, record: logging.LogRecord) -> str:
        fields = vars(record)
        epoch = fields.get("epoch")
        session = fields.get("session")
        entry: dict[str, Any] = {
            "time": iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "election": fields.get("election"),
            "candidate": fields.get("candidate"),
            "event": fields.get("event"),
            **epoch_fields(epoch if isinstance(epoch, int) else None),
            "session": session_text(session) if isinstance(session, int) else session,
            "reason": fields.get("reason"),
            "message": record.getMessage(),
        }
        for name in _OPTIONAL:
            if fields.get(name) is not None:
                entry[name] = fields[name]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str), self.secrets)


class ContextFilter(logging.Filter):
    """Fills the fields a record lacks (``election``, ``candidate``) from ``context``: one
    process, one candidate, so the session's records name it too."""

    def __init__(self, context: Mapping[str, object]) -> None:
        super().__init__()
        self.context = dict(context)

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in self.context.items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


class DropEvents(logging.Filter):
    """Drops the library's records of ``events`` (a program that reports them itself,
    with more to say, would otherwise print each twice)."""

    def __init__(self, events: Iterable[str]) -> None:
        super().__init__()
        self.events = frozenset(events)

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "zkelect" and getattr(record, "event", None) in self.events)


def secrets_of(security: ClientSecurity | None, env: Mapping[str, str] | None = None) -> list[str]:
    """Every password ``security`` holds, and the values of the secret environment
    variables: literal values to hide from every line."""
    found: list[str] = []
    if security is not None:
        for auth in security.auth:
            found += [auth.password, f"{auth.username}:{auth.password}"]
        found += [credential for _, credential in security.other_auth]
        if security.sasl is not None:
            found.append(security.sasl.password)
        if security.tls is not None and security.tls.key_password:
            found.append(security.tls.key_password)
    environ = os.environ if env is None else env
    found += [environ[name] for name in _SECRET_ENV if environ.get(name)]
    # Longest first: a password inside a longer credential must not split it.
    return sorted({secret for secret in found if secret}, key=len, reverse=True)


def configure(
    *,
    log_format: str,
    verbosity: int,
    prefix: str,
    context: Mapping[str, object] | None = None,
    secrets: Iterable[str] = (),
    drop_events: Iterable[str] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every record to ``stream`` (stderr) as one line of ``log_format``; the handler."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}: {log_format!r}")
    hidden = list(secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        JsonFormatter(hidden) if log_format == "json" else TextFormatter(prefix, hidden)
    )
    handler.addFilter(SecretFilter(hidden))
    handler.addFilter(ContextFilter(context or {}))
    if drop_events:
        handler.addFilter(DropEvents(drop_events))
    others = (logging.WARNING, logging.INFO, logging.DEBUG)[min(max(verbosity, 0), 2)]
    logging.basicConfig(level=others, handlers=[handler], force=True)
    logging.getLogger("zkelect").setLevel(logging.DEBUG if verbosity >= 1 else logging.INFO)
    kazoo = logging.CRITICAL if verbosity <= 0 else logging.INFO
    logging.getLogger("kazoo").setLevel(logging.DEBUG if verbosity >= 2 else kazoo)
    return handler
