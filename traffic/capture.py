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
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from detect_secrets.plugins import keyword as _keyword
from pydantic import ValidationError

from traffic.format import TrafficRecord, capture_file_name, to_json_dict
from traffic.headers import HEADER_REQUEST_ID, HEADER_TENANT_ID

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
_REQUEST_ID_HEADER = HEADER_REQUEST_ID.encode("latin-1")  # ASGI header names are bytes
_SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"}
# What cluster-eval redacts on top of detect-secrets' detectors (see _library_detectors):
# what that library lacks, or finds only in part. A group named "secret" limits the
# redaction to that group; otherwise the whole match goes.
_EMAIL_LOCAL = r"[\w.!#$%&'*+/=?^`{|}~-]"
DEFAULT_REDACTIONS: tuple[str, ...] = (
    # e-mail addresses, internationalised ones too (josé@bücher.de, 用户@例子.广告); the
    # look-behind starts a match only at the start of a word, keeping the scan linear
    rf"(?<!{_EMAIL_LOCAL}){_EMAIL_LOCAL}+@(?:[^\W_](?:[\w-]*[^\W_])?\.)+(?:[^\W\d_]{{2,}}|xn--[\w-]+)",
    r"\bsk-[A-Za-z0-9_-]{6,}",  # OpenAI / Anthropic style keys, short and project ones too
    r"\bhf_[A-Za-z0-9]{30,}",  # Hugging Face tokens
    r"\bgithub_pat_[A-Za-z0-9_]{22,}",  # GitHub fine-grained tokens (the library has ghp_ …)
    r"\bAIza[0-9A-Za-z_-]{35}",  # Google API keys
    r"\bya29\.[0-9A-Za-z_-]{20,}",  # Google OAuth access tokens
    r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}",  # bearer tokens pasted into prompts
    # token and dashed-key assignments (access_token=…, "session-token": "…", x-api-key:
    # …); the library's keywords cover password, secret, api_key but not these
    r"(?i)\b[\w-]*(?:token|api-key|auth-key)[\"']?\s*[:=]\s*[\"']?(?P<secret>[^\s\"',;]{8,})",
    # a whole private key block: the library flags only its BEGIN line
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
    r"(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
)
# A value under such a key is a secret whatever it looks like ({"password": "hunter2"}):
# detect-secrets' keyword list, plus tokens and credentials.
_SECRET_KEY = re.compile(
    rf"{_keyword.DENYLIST_REGEX_WITH_PREFIX}|(?:access|auth|refresh|session|id|api|bearer)_?token"
    r"|credentials?|authorization|cookie",
    re.IGNORECASE,
)
# Characters a token goes on with: a match is widened to its token's end (a JWT's
# signature, a longer key than the pattern's minimum).
_TOKEN_TAIL = re.compile(r"[A-Za-z0-9_\-+/=]*")
_LINE = re.compile(r"[^\n]+")


def _library_detectors() -> list[tuple[Any, re.Pattern[str], int | None]]:
    """detect-secrets' detectors as ``(plugin, regex, keyword group or None)``.

    Every regex-based plugin but the public-IP one (an address is not a credential),
    and the keyword plugin's config- and code-style regexes (``password=…``,
    ``"api_key": "…"``). The entropy plugins are left out: on prose and code they flag
    ordinary words and hashes, and replay needs prompts intact. The regexes are run
    here, not through ``analyze_line``/``scan_line``: those may verify a found secret
    against its service over the network when verification is configured.
    """
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.base import RegexBasedDetector
    from detect_secrets.plugins.ip_public import IPPublicDetector

    found: list[tuple[Any, re.Pattern[str], int | None]] = []
    plugin_classes: list[type] = list(get_mapping_from_secret_type_to_class().values())
    for plugin_class in plugin_classes:
        if issubclass(plugin_class, RegexBasedDetector) and plugin_class is not IPPublicDetector:
            plugin = plugin_class()
            found.extend((plugin, regex, None) for regex in plugin.denylist)
    keyword = _keyword.KeywordDetector()
    groups = {
        **_keyword.CONFIG_DENYLIST_REGEX_TO_GROUP,
        **_keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP,
    }
    found.extend((keyword, regex, group) for regex, group in groups.items())
    return found


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

    In every string of the body, in every key, in the tenant and the request id, each
    secret found is replaced by ``replacement``: detect-secrets' detectors (AWS, GitHub,
    GitLab, Slack, Stripe, JWT, private keys, URL credentials, ``password=`` and the
    other keyword assignments, …), :data:`DEFAULT_REDACTIONS` and ``patterns`` (which add
    to the rest, never replace it). A value under a secret-sounding key (``password``,
    ``api_key``, ``access_token``, …) goes whole. A request id holding a secret becomes a
    fresh ``redacted-<uuid>``. ``func`` then gets the whole record (JSONL form) and
    returns it changed, or ``None`` to drop it. Runs in the writer thread, off the
    request path.
    """

    def __init__(
        self,
        patterns: Sequence[str | re.Pattern[str]] = (),
        func: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
        replacement: str = "[REDACTED]",
    ) -> None:
        own = dict.fromkeys([*DEFAULT_REDACTIONS, *patterns])  # the defaults passed again: once
        self.patterns = [re.compile(p) if isinstance(p, str) else p for p in own]
        self.func = func
        self.replacement = replacement
        self._detectors = _library_detectors()

    def __call__(self, record: dict[str, Any]) -> dict[str, Any] | None:
        record["body"] = self._scrub(record["body"])
        tenant = record.get("tenant_id")
        if isinstance(tenant, str) and self.scrub_text(tenant) != tenant:
            record["tenant_id"] = self.replacement
        request_id = record.get("request_id")
        if isinstance(request_id, str) and self.scrub_text(request_id) != request_id:
            record["request_id"] = f"redacted-{uuid.uuid4().hex}"  # unique: no duplicates
        return self.func(record) if self.func is not None else record

    def scrub_text(self, text: str) -> str:
        """``text`` with every secret found replaced by ``replacement``."""
        spans = self._spans(text)
        if not spans:
            return text
        out, end = [], 0
        for start, stop in spans:
            out.append(text[end:start])
            out.append(self.replacement)
            end = stop
        out.append(text[end:])
        return "".join(out)

    def _spans(self, text: str) -> list[tuple[int, int]]:
        """Where the secrets are: sorted, overlapping ones merged."""
        found: list[tuple[int, int]] = []
        for pattern in self.patterns:
            for match in pattern.finditer(text):
                named = "secret" in pattern.groupindex and match.group("secret") is not None
                found.append(match.span("secret") if named else match.span())
        for line in _LINE.finditer(text):  # the library's regexes are written for one line
            found.extend(self._library_spans(line.group(), line.start()))
        merged: list[tuple[int, int]] = []
        for start, stop in sorted(span for span in found if span[1] > span[0]):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(stop, merged[-1][1]))
            else:
                merged.append((start, stop))
        return merged

    def _library_spans(self, line: str, offset: int) -> Iterator[tuple[int, int]]:
        for plugin, regex, keyword_group in self._detectors:
            for match in regex.finditer(line):
                if keyword_group is not None:  # the value assigned to the keyword
                    start, stop = match.span(keyword_group)
                    yield offset + start, offset + stop
                    continue
                # the secret is the first non-empty group, as the plugins themselves yield it
                group = next((i for i, g in enumerate(match.groups(), 1) if g), 0)
                start, stop = match.span(group)
                if not any(True for _ in plugin.analyze_string(match.group(0))):
                    continue  # the plugin's own check refused it (a JWT that does not decode)
                while start < stop and line[start] in _DELIMITERS:
                    start += 1
                while stop > start and line[stop - 1] in _DELIMITERS:
                    stop -= 1
                stop = _TOKEN_TAIL.match(line, stop).end()  # type: ignore[union-attr]
                yield offset + start, offset + stop

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, list):
            return [self._scrub(item) for item in value]
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for key, item in value.items():
            secret_key = isinstance(key, str) and _SECRET_KEY.search(key.replace("-", "_"))
            scalar = isinstance(item, str | int | float) and not isinstance(item, bool)
            item = self.replacement if secret_key and scalar else self._scrub(item)
            new_key = self.scrub_text(key) if isinstance(key, str) else key
            unique, n = new_key, 1
            while unique in out:  # two keys redacted alike must not overwrite each other
                n += 1
                unique = f"{new_key}-{n}"
            out[unique] = item
        return out


# what a library match may start or end with around the secret itself
_DELIMITERS = frozenset(" \t\r\"'=:")


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
        # redaction is on unless a caller hands in its own callable
        self.redactor = redactor if redactor is not None else Redactor()
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
        tenant_header: str = HEADER_TENANT_ID,
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
                elif name == _REQUEST_ID_HEADER:
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
