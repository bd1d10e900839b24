"""The documents a profile sends: refused when the profile loads if the target could not use them, and made
unique per job so that no job is a server cache hit of another.

A server may cache LLM scripts and TTS audio by content (the upstream server does, in Redis): the same
document twice then measures a cache hit, not the pipeline. `unique_upload` gives every job its own copy by
adding a line that carries the job's nonce and that a narrator does not read: an HTML comment (invisible in
rendered Markdown, skipped by Markdown-aware planners, read by an LLM as markup). Plain text has no comment
syntax, so a .txt gets the same line. A PDF gets it as invisible text (render mode 3) in an incremental
update of its last page: the pages look the same, the original bytes are kept whole, and the extracted text
ends with the comment. What a server narrates from the comment is beyond our reach; identical output videos
are flagged in the integrity report whatever the cause.
"""

from __future__ import annotations

import codecs
import io
import re
from pathlib import Path

from pypdf import PdfWriter
from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, NameObject

from stack.server.extract import ExtractError, extract_text

# the types the contract's server accepts (../shared/CONTRACT.md), by file name suffix
SUPPORTED = {".txt": "text", ".md": "text", ".pdf": "pdf"}
# a text in UTF-16 (which the server reads when it starts with its BOM) gets its nonce line in UTF-16 too;
# UTF-8, Windows-1252 and latin-1 all read the line's ASCII as itself
_UTF16 = {codecs.BOM_UTF16_LE: "utf-16-le", codecs.BOM_UTF16_BE: "utf-16-be"}
_NONCE = re.compile(r"^[0-9A-Za-z-]{1,64}$")
_NONCE_FONT = NameObject("/T2VBenchNonce")


def nonce_line(nonce: str) -> str:
    """The line that makes an upload unique: `<!-- t2v-bench nonce 3f2a... -->`."""
    if not _NONCE.match(nonce):  # it goes into a PDF string and an HTML comment unescaped
        raise ValueError(f"a nonce is 1 to 64 letters, digits or dashes, got {nonce!r}")
    return f"<!-- t2v-bench nonce {nonce} -->"


def unique_upload(name: str, data: bytes, nonce: str) -> bytes:
    """`data` of the document `name` with its nonce line added (see the module's docstring); ValueError when
    it cannot be (an unsupported type, a PDF pypdf cannot update)."""
    kind = SUPPORTED.get(Path(name).suffix.lower())
    line = nonce_line(nonce)
    if kind == "text":
        encoding = next((codec for bom, codec in _UTF16.items() if data.startswith(bom)), "ascii")
        newline = "\r\n".encode(encoding) if "\r\n".encode(encoding) in data else "\n".encode(encoding)
        ending = b"" if data.endswith(newline) or not data else newline
        # a blank line first: the comment is a block of its own, not the end of the last paragraph
        return data + ending + newline + line.encode(encoding) + newline
    if kind == "pdf":
        try:
            return _pdf_with_text(data, line)
        except Exception as exc:  # pypdf raises anything on a damaged file; what matters is that it failed
            raise ValueError(f"cannot add a line to this PDF ({type(exc).__name__}: {exc})") from exc
    raise ValueError(f"no way to make a {Path(name).suffix or 'suffix-less'} document unique")


def _pdf_with_text(data: bytes, text: str) -> bytes:
    """`data` with an incremental update that adds `text`, invisible, to the last page."""
    writer = PdfWriter(io.BytesIO(data), incremental=True)
    page = writer.pages[-1]
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica")})
    resources = page.setdefault(NameObject("/Resources"), DictionaryObject()).get_object()
    fonts = resources.setdefault(NameObject("/Font"), DictionaryObject()).get_object()
    fonts[_NONCE_FONT] = writer._add_object(font)
    stream = DecodedStreamObject()
    # q/Q: the page's own graphics state is left as it was; 3 Tr: neither filled nor stroked (invisible)
    stream.set_data(f"q BT {_NONCE_FONT} 1 Tf 3 Tr 0 0 Td ({text}) Tj ET Q".encode())
    contents = page.raw_get("/Contents") if "/Contents" in page else None
    existing = [] if contents is None else list(contents.get_object()) \
        if isinstance(contents.get_object(), ArrayObject) else [contents]
    page[NameObject("/Contents")] = ArrayObject([*existing, writer._add_object(stream)])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- checks when the profile loads ---

def text_problem(name: str, data: bytes) -> str | None:
    """Why the document `name` holding `data` gives the server no text, else None: the bundled server's own
    reading (stack.server.extract), so a document is refused here exactly when that server would refuse it
    (UTF-8, UTF-16 with its BOM and Windows-1252 are text; binary data and a PDF without text are not)."""
    try:
        extract_text(data, name)
    except ExtractError as exc:
        return str(exc)
    return None


def content_problem(name: str, data: bytes, max_upload_bytes: int, unique: bool) -> str | None:
    """Why the document `name` holding `data` cannot be sent as the profile would send it, in one line."""
    if not data:
        return "empty file"
    if len(data) > max_upload_bytes:
        return too_large(len(data), max_upload_bytes)
    problem = text_problem(name, data)
    if problem or not unique:
        return problem
    try:
        sent = len(unique_upload(name, data, "0" * 32))
    except ValueError as exc:
        return f"{exc}; set workload.unique_documents = false to send it as it is"
    if sent > max_upload_bytes:
        return f"{too_large(sent, max_upload_bytes)} with its nonce line (workload.unique_documents)"
    return None


def too_large(size: int, limit: int) -> str:
    return f"{size} bytes, larger than the target's upload limit target.max_upload_bytes = {limit}"


def document_problem(path: Path, max_upload_bytes: int, unique: bool) -> str | None:
    """Why the document at `path` cannot be sent, else None; a file larger than the limit is not read."""
    if path.suffix.lower() not in SUPPORTED:
        shown = f"'{path.suffix}'" if path.suffix else "no suffix"
        return f"unsupported type {shown} (the target takes {', '.join(SUPPORTED)})"
    try:
        size = path.stat().st_size
        if size > max_upload_bytes:
            return too_large(size, max_upload_bytes)
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc}"
    return content_problem(path.name, data, max_upload_bytes, unique)
