"""Capture production traffic: a pure-ASGI middleware and a background file writer.

The serving app mounts :class:`CaptureMiddleware` in front of its routes. For a sampled
``POST /v1/chat/completions`` it buffers the request body, hands the app the very same
ASGI messages (so the app sees an unchanged request), and puts the body, tenant and
arrival time on a bounded queue with ``put_nowait``. The request path never blocks and
never fails because of capture: a full queue increments ``dropped``, anything else that
goes wrong increments ``errors``.

:class:`CaptureWriter` owns the queue and a daemon thread that every ``flush_interval``
drains it in batches — parsing, redacting, validating each record — and appends to
rotating files in the captured-traffic format (docs/traffic-format.md), named by their
opening time so :func:`traffic.loader.load_capture_dir` can pick a date window.

Every batch reaches the disk (flushed to the OS) before the next one is read, so a
replica that dies loses at most the last ``flush_interval`` of records. A Parquet file
cannot grow by appending, so in Parquet mode the records go to a JSONL *journal* of the
same name first; when the file rotates or the writer closes, the journal becomes the
Parquet file (written aside, renamed) and is removed. A journal left by a dead replica
is an ordinary capture file the loader reads.

Headers are not captured, except the tenant header (never an auth header) and
``x-request-id``; the body is passed through :class:`Redactor` before it is written.

Usage with starlette / FastAPI::

    writer = CaptureWriter(Path("/var/capture"), redactor=Redactor()).start()
    app.add_middleware(CaptureMiddleware, writer=writer, sample_rate=0.05)
    ...
    writer.close()  # on shutdown: drains the queue and closes the last file
"""

from __future__ import annotations

import json
import logging
import os
import queue
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from traffic.format import TrafficRecord, capture_file_name, to_json_dict

__all__ = [
    "DEFAULT_REDACTIONS",
    "CaptureMiddleware",
    "CaptureStats",
    "CaptureWriter",
    "Redactor",
]

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CAPTURED_ENDPOINT = "/v1/chat/completions"
# Headers that carry credentials: refusing them as the tenant header keeps them out of files.
_SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"}
DEFAULT_REDACTIONS: tuple[str, ...] = (
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",  # e-mail addresses
    r"\bsk-[A-Za-z0-9_-]{16,}",  # OpenAI-style API keys
    r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{16,}",  # bearer tokens pasted into prompts
    r"\bAKIA[0-9A-Z]{16}\b",  # AWS access key ids
)


@dataclass
class CaptureStats:
    """Counters; each is written by one thread only, so no lock is needed to read them."""

    sampled: int = 0  # requests chosen for capture (event loop)
    dropped: int = 0  # sampled but not queued: queue full or writer closed (event loop)
    errors: int = 0  # capture-side failures, on either side; the request never saw them
    too_large: int = 0  # sampled but the body passed max_body_bytes (event loop)
    filtered: int = 0  # removed by the redaction callable (writer thread)
    written: int = 0  # records on disk: a file or a Parquet journal (writer thread)
    files: int = 0  # files opened (writer thread)


class Redactor:
    """Scrubs secrets from a record before it is written.

    Every pattern is replaced by ``replacement`` in every string of the body; ``func``
    then gets the whole record (JSONL form) and returns it changed, or ``None`` to drop
    it. Runs in the writer thread, off the request path.
    """

    def __init__(
        self,
        patterns: Sequence[str | re.Pattern[str]] = DEFAULT_REDACTIONS,
        func: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
        replacement: str = "[REDACTED]",
    ) -> None:
        self.patterns = [re.compile(p) if isinstance(p, str) else p for p in patterns]
        self.func = func
        self.replacement = replacement

    def __call__(self, record: dict[str, Any]) -> dict[str, Any] | None:
        if self.patterns:
            record["body"] = self._scrub(record["body"])
        return self.func(record) if self.func is not None else record

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for pattern in self.patterns:
                value = pattern.sub(self.replacement, value)
            return value
        if isinstance(value, dict):
            return {key: self._scrub(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._scrub(item) for item in value]
        return value


@dataclass(frozen=True)
class _Captured:
    """What the request path hands over: cheap to build, parsed later in the writer."""

    arrival: datetime
    tenant_id: str
    request_id: str
    body: bytes


class CaptureWriter:
    """Bounded queue + background thread writing rotating capture files."""

    def __init__(
        self,
        directory: str | Path,
        *,
        file_format: Literal["jsonl", "parquet"] = "jsonl",
        queue_size: int = 10_000,
        batch_size: int = 256,
        flush_interval: float = 1.0,
        rotate_bytes: int = 64 * 1024 * 1024,
        rotate_records: int = 100_000,
        rotate_seconds: float = 3600.0,
        redactor: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
        writer_id: str | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.file_format = file_format
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.rotate_bytes = rotate_bytes
        self.rotate_records = rotate_records
        self.rotate_seconds = rotate_seconds
        self.redactor = redactor
        self.writer_id = writer_id or f"{socket.gethostname()}.{os.getpid()}"
        self.stats = CaptureStats()
        self._queue: queue.Queue[_Captured] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._sequence = 0
        self._file: Any = None  # open JSONL handle: the file itself, or a Parquet journal
        self._path: Path | None = None
        self._file_opened = 0.0
        self._file_bytes = 0
        self._file_records = 0
        self.paths: list[Path] = []  # every file opened, by its final name

    # --- request side (event loop) ------------------------------------------------

    def submit(self, item: _Captured) -> bool:
        """Queue a capture without ever blocking; ``False`` (and counted) when dropped."""
        if self._closed:
            self.stats.dropped += 1
            return False
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.stats.dropped += 1
            return False
        return True

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> CaptureWriter:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="traffic-capture", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Stop accepting, write what is queued, close the last file."""
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        while True:  # a submit that raced the last drain is a drop, not a silent loss
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
            self.stats.dropped += 1

    def __enter__(self) -> CaptureWriter:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                stopping = self._stop.wait(self.flush_interval)
                self._drain()
                if stopping:
                    break
        finally:
            self._finish_file()

    def _drain(self) -> None:
        while True:
            batch: list[_Captured] = []
            try:
                while len(batch) < self.batch_size:
                    batch.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            if batch:
                self._write_batch(batch)
            if len(batch) < self.batch_size:
                self._rotate_if_old()
                return

    def _write_batch(self, batch: list[_Captured]) -> None:
        records = [r for r in (self._to_record(item) for item in batch) if r is not None]
        try:
            for record in records:
                self._add(record)
            if self._file is not None:
                self._file.flush()  # whole batches reach the OS: readers and a crash see them
        except Exception:  # disk full, permissions: count, keep serving
            logger.exception("capture: writing a batch failed")
            self.stats.errors += 1
            self._finish_file()

    def _to_record(self, item: _Captured) -> TrafficRecord | None:
        try:
            raw: dict[str, Any] | None = {
                "request_id": item.request_id,
                "arrival": item.arrival,
                "tenant_id": item.tenant_id,
                "endpoint": CAPTURED_ENDPOINT,
                "body": json.loads(item.body),
                "tags": {"source": "capture"},
            }
            if self.redactor is not None:
                raw = self.redactor(raw)  # type: ignore[arg-type]
                if raw is None:
                    self.stats.filtered += 1
                    return None
            return TrafficRecord.model_validate(raw)
        except (ValueError, ValidationError, TypeError, KeyError):
            self.stats.errors += 1  # not JSON, not a chat request, or a broken redactor
            return None
        except Exception:
            logger.exception("capture: building a record failed")
            self.stats.errors += 1
            return None

    def _add(self, record: TrafficRecord) -> None:
        if self._file is not None and self._file_full():
            self._finish_file()
        if self._file is None:
            self._path = self._next_path(datetime.now(UTC))
            self._file = self._path.open("a", encoding="utf-8")
            self._file_opened = time.monotonic()
            self._file_bytes = self._file_records = 0
        line = json.dumps(to_json_dict(record), ensure_ascii=False) + "\n"
        self._file.write(line)
        self._file_bytes += len(line.encode("utf-8"))
        self._file_records += 1
        self.stats.written += 1

    def _file_full(self) -> bool:
        return self._file_bytes >= self.rotate_bytes or self._file_records >= self.rotate_records

    def _rotate_if_old(self) -> None:
        if self._file is not None and time.monotonic() - self._file_opened >= self.rotate_seconds:
            self._finish_file()

    def _finish_file(self) -> None:
        """Close the current file; in Parquet mode turn its journal into the Parquet file."""
        if self._file is None:
            return
        journal, self._path = self._path, None
        try:
            self._file.close()
        finally:
            self._file = None
        if self.file_format == "parquet" and journal is not None:
            self._build_parquet(journal)

    def _build_parquet(self, journal: Path) -> None:
        """Write the journal's records as Parquet (aside, then renamed), then drop it.

        On any failure the journal stays: it is a capture file the loader reads.
        """
        from traffic.writer import write_parquet

        path = journal.with_suffix(".parquet")
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            with journal.open(encoding="utf-8") as handle:
                records = [TrafficRecord.model_validate_json(line) for line in handle]
            write_parquet(records, tmp)
            os.replace(tmp, path)
            journal.unlink()
        except Exception:
            logger.exception("capture: building %s failed; its journal %s stays", path, journal)
            self.stats.errors += 1

    def _next_path(self, opened: datetime) -> Path:
        """The next file's JSONL path (in Parquet mode, its journal)."""
        self._sequence += 1
        self.stats.files += 1
        name = capture_file_name(opened, self._sequence, ".jsonl", self.writer_id)
        self.paths.append(self.directory / Path(name).with_suffix("." + self.file_format).name)
        return self.directory / name


class CaptureMiddleware:
    """Pure-ASGI middleware copying sampled chat requests to a :class:`CaptureWriter`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        writer: CaptureWriter,
        sample_rate: float = 1.0,
        tenant_header: str = "x-tenant-id",
        default_tenant: str = "unknown",
        path: str = CAPTURED_ENDPOINT,
        max_body_bytes: int = 1024 * 1024,
        seed: int | None = None,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError("sample_rate must be within [0, 1]")
        if tenant_header.lower() in _SECRET_HEADERS:
            raise ValueError(f"{tenant_header!r} carries credentials; it is never captured")
        self.app = app
        self.writer = writer
        self.sample_rate = sample_rate
        self.tenant_header = tenant_header.lower().encode("latin-1")
        self.default_tenant = default_tenant
        self.path = path
        self.max_body_bytes = max_body_bytes
        self._rng = random.Random(seed)

    @property
    def stats(self) -> CaptureStats:
        return self.writer.stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._wanted(scope):
            await self.app(scope, receive, send)
            return
        arrival = datetime.now(UTC)
        self.stats.sampled += 1
        messages, complete = await self._buffer(receive)
        if complete:
            self._submit(scope, arrival, messages)

        async def replay() -> Message:
            # the app reads exactly the messages the server sent, then the live channel
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    def _wanted(self, scope: Scope) -> bool:
        try:
            return (
                scope["type"] == "http"
                and scope.get("method") == "POST"
                and scope.get("path", "").rstrip("/") == self.path
                and self.sample_rate > 0
                and (self.sample_rate >= 1 or self._rng.random() < self.sample_rate)
            )
        except Exception:
            self.stats.errors += 1
            return False

    async def _buffer(self, receive: Receive) -> tuple[list[Message], bool]:
        """Read the body's messages; stop early (uncaptured) past ``max_body_bytes``."""
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages, False  # client went away: nothing worth capturing
            size += len(message.get("body", b""))
            if size > self.max_body_bytes:
                self.stats.too_large += 1
                return messages, False
            if not message.get("more_body", False):
                return messages, True

    def _submit(self, scope: Scope, arrival: datetime, messages: list[Message]) -> None:
        try:
            tenant = request_id = None
            for name, value in scope.get("headers", []):
                if name == self.tenant_header:
                    tenant = value.decode("latin-1").strip()
                elif name == b"x-request-id":
                    request_id = value.decode("latin-1").strip()
            body = b"".join(m.get("body", b"") for m in messages)
            self.writer.submit(
                _Captured(
                    arrival=arrival,
                    tenant_id=tenant or self.default_tenant,
                    request_id=request_id or uuid.uuid4().hex,
                    body=body,
                )
            )
        except Exception:  # capture must never fail the request
            self.stats.errors += 1
