"""HTTP clients for the campaign's tasks.

Building a TLS context loads the CA bundle (~40 ms of CPU); every task opens its own client, so the
context is built once, under a lock (concurrent tasks start together), and shared: the campaign's
own CPU must stay out of the figures it takes.
"""

from __future__ import annotations

import ssl
import threading

import httpx

_lock = threading.Lock()
_context: ssl.SSLContext | None = None


def _tls() -> ssl.SSLContext:
    global _context
    with _lock:
        if _context is None:
            _context = httpx.create_ssl_context()
        return _context


def client(**options) -> httpx.Client:
    return httpx.Client(verify=_tls(), **options)
