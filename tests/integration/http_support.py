"""One HTTP request with any method, its JSON body parsed strictly (ids above 2^53 fail)."""

from __future__ import annotations

import http.client
from typing import Any
from urllib.parse import urlsplit

from cli_support import loads_strict

__all__ = ["call"]


def call(url: str, method: str = "GET", timeout: float = 5.0) -> tuple[int, dict[str, str], Any]:
    """(status, headers, JSON body) of ``method url``; an error status is an answer too."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(
            method, path or "/", body=b"{}" if method in ("POST", "PUT", "PATCH") else None
        )
        response = conn.getresponse()
        headers = dict(response.getheaders())
        assert headers["Content-Type"] == "application/json", (url, method, headers)
        return response.status, headers, loads_strict(response.read().decode())
    finally:
        conn.close()
