"""Which uploads are accepted, and the plain text inside them."""

from __future__ import annotations

import codecs
import io
import logging
import re
from pathlib import PurePath

from pypdf import PdfReader

# Extension → how its text is read. Decided by the name only: browsers send unreliable content types.
SUPPORTED_EXTENSIONS = {".txt": "text", ".md": "text", ".markdown": "text", ".pdf": "pdf"}

# Control characters other than the whitespace ones (tab, newlines, vertical tab, form feed): text has
# next to none, random bytes read as Windows-1252 or latin-1 are about a quarter of them.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
MAX_CONTROL_SHARE = 0.02

# pypdf reports recoverable damage through logging; the outcome is reported to the user instead.
logging.getLogger("pypdf").setLevel(logging.ERROR)


class ExtractError(ValueError):
    """The upload is unusable; the message is shown to the client as a 400 detail."""


def upload_extension(filename: str | None) -> str:
    """The lower-cased extension of an accepted upload name, or ExtractError naming the allowed types."""
    extension = PurePath(filename or "").suffix.lower()
    if extension not in SUPPORTED_EXTENSIONS:
        allowed = ", ".join(SUPPORTED_EXTENSIONS)
        shown = f"'{extension}'" if extension else "a name without extension"
        raise ExtractError(f"unsupported file type: {shown} (allowed: {allowed})")
    return extension


def decode_text(data: bytes) -> str:
    """UTF-8 (a BOM is dropped) when it decodes, UTF-16 when it starts with its BOM, else Windows-1252
    (smart quotes and dashes of old Windows files), else latin-1, which decodes any byte string."""
    encodings = ["utf-8-sig", "cp1252", "latin-1"]
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings.insert(0, "utf-16")
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte string")


def control_share(text: str) -> float:
    """The share of `text` that is control characters (whitespace ones aside): 0 for text."""
    return (len(text) - len(_CONTROL.sub("", text))) / len(text) if text else 0.0


def pdf_text(data: bytes) -> str:
    try:
        reader = PdfReader(io.BytesIO(data))
        encrypted = reader.is_encrypted and not reader.decrypt("")
        pages = [] if encrypted else [(page.extract_text() or "").strip() for page in reader.pages]
    # Damaged PDFs make pypdf raise all sorts of exceptions; to the user they all mean "unreadable".
    except Exception as exc:
        raise ExtractError(f"unreadable PDF: {type(exc).__name__}: {exc}") from exc
    if encrypted:
        raise ExtractError("unreadable PDF: it is encrypted with a password")
    return "\n\n".join(pages)


def extract_text(data: bytes, filename: str) -> str:
    """The document's text, stripped; ExtractError when it is empty, unreadable or holds no text."""
    extension = upload_extension(filename)
    if not data:
        raise ExtractError(f"empty file: '{filename}' has no content")
    is_pdf = SUPPORTED_EXTENSIONS[extension] == "pdf"
    text = pdf_text(data) if is_pdf else decode_text(data)
    if not is_pdf and (share := control_share(text)) > MAX_CONTROL_SHARE:
        raise ExtractError(f"no text: '{filename}' is binary data, not text ({share:.0%} of it control bytes; "
                           "text must be UTF-8, UTF-16 with a BOM, or Windows-1252)")
    text = text.replace("\x00", "").strip()
    if not text:
        hint = " (a scanned PDF holds images, not text)" if extension == ".pdf" else ""
        raise ExtractError(f"no text: '{filename}' holds no extractable text{hint}")
    return text
