"""Streamed uploads: the body is spooled to a temporary file chunk by chunk, never held whole in
memory, and refused with 413 as soon as it passes the limit (or up front, from Content-Length)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from fastapi import Request

from service.api.errors import PayloadTooLarge
from service.errors import InvalidInput

__all__ = ["FORMATS", "SpooledUpload", "read_limited", "spool_upload", "upload_format"]

FORMATS = {"jsonl": ".jsonl", "csv": ".csv", "parquet": ".parquet"}
_CONTENT_TYPES = {"application/x-ndjson": "jsonl", "application/jsonl": "jsonl", "application/x-jsonlines": "jsonl",
                  "text/csv": "csv", "application/vnd.apache.parquet": "parquet", "application/x-parquet": "parquet"}


def upload_format(request: Request, explicit: str | None) -> str:
    if explicit:
        return explicit
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in _CONTENT_TYPES:
        return _CONTENT_TYPES[content_type]
    raise InvalidInput("say what the upload is: ?format=jsonl|csv|parquet, or Content-Type application/x-ndjson, "
                       "text/csv or application/vnd.apache.parquet")


def _check_declared(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(limit)


class SpooledUpload:
    """A request body on disk; ``close()`` removes it."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size

    def close(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


async def spool_upload(request: Request, suffix: str, limit: int) -> SpooledUpload:
    _check_declared(request, limit)
    fd, name = tempfile.mkstemp(prefix="cb-upload-", suffix=suffix)
    upload = SpooledUpload(Path(name), 0)
    try:
        with os.fdopen(fd, "wb") as fh:
            async for chunk in request.stream():
                upload.size += len(chunk)
                if upload.size > limit:
                    raise PayloadTooLarge(limit)
                fh.write(chunk)
    except BaseException:
        upload.close()
        raise
    return upload


async def read_limited(request: Request, limit: int) -> bytes:
    """A small body (webhooks) read in chunks up to ``limit``."""
    _check_declared(request, limit)
    parts, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(limit)
        parts.append(chunk)
    return b"".join(parts)
