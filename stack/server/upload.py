"""Receive the multipart `file` field straight to disk, refusing it as soon as it breaks a rule.

Parsing the request stream ourselves (instead of FastAPI's UploadFile, which spools the whole
body first) lets an oversized or wrongly typed upload be refused without storing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from stack.server.extract import ExtractError, upload_extension

FIELD = "file"


class UploadRejected(Exception):
    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


@dataclass(frozen=True)
class ReceivedFile:
    filename: str
    extension: str
    path: Path
    size: int


class _FileFieldWriter:
    """python-multipart callbacks: write the first `file` part to `destination`, enforcing the limits."""

    def __init__(self, destination: Path, limit_mb: int) -> None:
        self.destination = destination
        self.limit_bytes = limit_mb * 1024 * 1024
        self.limit_mb = limit_mb
        self.filename: str | None = None
        self.extension = ""
        self.size = 0
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._out = None
        self.complete = False  # the part's closing boundary was seen

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._header_field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._header_value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._disposition = b""

    def _header_end(self) -> None:
        if bytes(self._header_field).strip().lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if self.filename is not None or options.get(b"name", b"").decode("utf-8", "replace") != FIELD:
            return
        filename = options.get(b"filename")
        self.filename = filename.decode("utf-8", "replace") if filename is not None else ""
        try:
            self.extension = upload_extension(self.filename)
        except ExtractError as exc:
            raise UploadRejected(400, str(exc)) from exc
        self._out = self.destination.open("wb")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._out is None:
            return
        self.size += end - start
        if self.size > self.limit_bytes:
            raise UploadRejected(400, f"file too large: over {self.limit_mb} MiB")
        self._out.write(data[start:end])

    def _part_end(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
            self.complete = True

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


async def receive_file(request: Request, destination: Path, limit_mb: int) -> ReceivedFile:
    """Stream the `file` field of a multipart request into `destination` (removed again on refusal)."""
    content_type, options = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data" or not options.get(b"boundary"):
        raise UploadRejected(422, "expected a multipart/form-data body with a 'file' field")
    writer = _FileFieldWriter(destination, limit_mb)
    parser = MultipartParser(options[b"boundary"], writer.callbacks())
    try:
        try:
            async for chunk in request.stream():
                parser.write(chunk)
            parser.finalize()
        except ValueError as exc:  # python-multipart's parse errors are ValueErrors
            raise UploadRejected(400, f"malformed multipart body: {exc}") from exc
        finally:
            writer.close()
        if writer.filename is None:
            raise UploadRejected(422, "no 'file' field in the multipart form")
        if not writer.complete:
            raise UploadRejected(400, "malformed multipart body: the 'file' part ends without its boundary")
        if writer.size == 0:
            raise UploadRejected(400, f"empty file: '{writer.filename}' has no content")
    except BaseException:
        destination.unlink(missing_ok=True)
        raise
    return ReceivedFile(writer.filename, writer.extension, destination, writer.size)
