"""Which uploads are accepted, and the plain text inside them."""

from __future__ import annotations

import io
import logging
from pathlib import PurePath

from pypdf import PdfReader

# Extension → how its text is read. Decided by the name only: browsers send unreliable content types.
SUPPORTED_EXTENSIONS = {".txt": "text", ".md": "text", ".markdown": "text", ".pdf": "pdf"}

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
    """UTF-8 (a BOM is dropped) when it decodes, else latin-1, which decodes any byte string."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


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
    text = pdf_text(data) if SUPPORTED_EXTENSIONS[extension] == "pdf" else decode_text(data)
    text = text.replace("\x00", "").strip()
    if not text:
        hint = " (a scanned PDF holds images, not text)" if extension == ".pdf" else ""
        raise ExtractError(f"no text: '{filename}' holds no extractable text{hint}")
    return text
