"""Secrets never leave the process: credentials in URLs and token-like settings are masked in everything
written or logged (ledger, tables, manifest, reports, Prefect parameters and logs, the console).

The real value is used only to connect. Two kinds of secret are masked:

- the credentials of ANY URL in a text, known or not: `redis://:pw@host` → `redis://:***@host`,
  `https://user:pw@host` → `https://user:***@host`, `https://token@host` → `https://***@host`;
- every value registered with `register_secrets` (a profile's URL passwords and the values of its
  token-, password-, key- or header-like settings, see `secrets_in`), wherever it appears, also bare
  or URL-encoded (an error message may echo it).

`install_log_redaction` masks every log record of the process as it is created, exception texts
included, so Prefect's console, its API log handler and any other handler only ever see masked text.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote

MASK = "***"
# shorter values would mask ordinary words; such a password is still masked inside any URL
MIN_SECRET_LENGTH = 4
# keys whose value is itself a secret (a header table's every value is)
SECRET_KEY = re.compile(r"pass(word|wd)?|secret|token|api[_-]?key|auth|header|cookie|credential", re.IGNORECASE)
# scheme://user:password@  or  scheme://token@  (the userinfo of any URL in a text)
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^\s/?#@]+)@")

_secrets: set[str] = set()
_lock = threading.Lock()
_installed = False


def _mask_userinfo(match: re.Match) -> str:
    user, colon, _password = match["userinfo"].partition(":")
    shown = f"{user}:{MASK}" if colon else MASK
    return f"{match['scheme']}{shown}@"


def register_secrets(values: Iterable[str]) -> None:
    """Mask these values from now on in everything this process writes or logs."""
    with _lock:
        for value in values:
            # as given, decoded, URL-encoded and as written inside a JSON string
            for form in {value, unquote(value), quote(value, safe=""), json.dumps(value)[1:-1]}:
                if len(form) >= MIN_SECRET_LENGTH:
                    _secrets.add(form)


def redact_text(text: str) -> str:
    masked = _USERINFO.sub(_mask_userinfo, text)
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)  # a longer secret first: it may contain a shorter one
    for secret in known:
        if secret in masked:
            masked = masked.replace(secret, MASK)
    return masked


# text that looks like a secret whatever registered it: an Authorization scheme's credentials ("Bearer xyz"), and
# the value of a secret-like key or option ("token=xyz", "password: xyz", "--api-key xyz")
_VALUE = r"(?P<value>[^\s\"'&;,$][^\s\"'&;,]*)"  # not a `$NAME` reference: that is no secret
_SCHEME_CREDENTIALS = re.compile(rf"(?P<key>\b(?:Bearer|Basic)|\bAuthorization:\s*\w+)(?P<sep>\s+){_VALUE}",
                                 re.IGNORECASE)
_SECRET_WORD = r"[\w-]*(?:pass(?:word|wd)?|secret|token|api[_-]?key|credential)[\w-]*"
_SECRET_ASSIGNMENT = re.compile(rf"(?P<key>\b{_SECRET_WORD})(?P<sep>\s*[=:]\s*[\"']?){_VALUE}", re.IGNORECASE)
_SECRET_OPTION = re.compile(rf"(?P<key>(?<!\S)--{_SECRET_WORD})(?P<sep>\s+[\"']?){_VALUE}", re.IGNORECASE)


def redact_secret_looking(text: str) -> str:
    """`text` masked as redact_text does, and besides every piece of it that looks like a secret though no one
    registered it: for free text that may carry one (a fault command, its output)."""
    masked = redact_text(text)
    for pattern in (_SCHEME_CREDENTIALS, _SECRET_ASSIGNMENT, _SECRET_OPTION):
        masked = pattern.sub(lambda m: m["key"] + m["sep"] + (m["value"] if m["value"] == MASK else MASK), masked)
    return masked


def redact_url(url: object) -> str:
    """A URL as it may be shown: its credentials masked."""
    return redact_text(str(url))


def redact(value: Any) -> Any:
    """`value` with every string in it masked (dicts, lists and tuples walked; other values kept)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: redact(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(item) for item in value)
    return value


def _all_strings(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _all_strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _all_strings(item)
    elif value is not None and not isinstance(value, bool | int | float):
        yield str(value)


def secrets_in(settings: Any) -> list[str]:
    """The secrets of a settings tree (a pydantic model or plain data): URL passwords and tokens, and the
    values under secret-like keys (password, token, api_key, headers, ...)."""
    data = settings.model_dump() if hasattr(settings, "model_dump") else settings
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                if SECRET_KEY.search(str(key)):
                    found.extend(_all_strings(item))
                else:
                    walk(item)
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item)
        elif node is not None and not isinstance(node, bool | int | float):
            for match in _USERINFO.finditer(str(node)):
                user, colon, password = match["userinfo"].partition(":")
                found.append(password if colon else user)

    walk(data)
    return [value for value in found if value]


def _masked_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a malformed call: logging reports it itself when the record is formatted
        return
    text = redact_text(message)
    if record.exc_info and record.exc_info[1] is not None:
        trace = logging.Formatter().formatException(record.exc_info)
        clean = redact_text(trace)
        if clean != trace:  # shown as masked text: a handler rendering exc_info itself would show the secret
            text, record.exc_info, record.exc_text = f"{text}\n{clean}", None, None
    if text != message:
        record.msg, record.args = text, None


def install_log_redaction(secrets: Iterable[str] = ()) -> None:
    """Register `secrets` and (once per process) mask every log record as it is created, whatever logger
    and handler it goes to: a filter on a logger would miss records propagated from its children."""
    global _installed
    register_secrets(secrets)
    with _lock:
        if _installed:
            return
        _installed = True
    create = logging.getLogRecordFactory()

    def masked_record(*args, **kwargs) -> logging.LogRecord:
        record = create(*args, **kwargs)
        _masked_record(record)
        return record

    logging.setLogRecordFactory(masked_record)

