"""Open-loop replay: send each scheduled request at its time, record one span for it.

Timing model (the reason this module exists rather than a ``for`` loop with sleeps):

* The schedule is anchored to one start instant: request *i* is due at
  ``start + offset_i / speedup`` on the monotonic clock. Every wait is computed from
  that anchor, never from the previous send, so lateness never accumulates.
* Each request is its own task, created at its due time; nothing bounds the number in
  flight and the connection pool is sized for the most requests the schedule can have
  in flight at once: its busiest ``timeout``-long window (``ReplayPlan.peak_rate``,
  ``limits_for``; sizing it for the *mean* rate made a burst queue for connections). A
  slow or stalled response therefore cannot hold back the requests after it: no
  coordinated omission. If the generator itself falls behind, that shows up honestly
  as ``schedule_lag_ms`` (actual send − intended send).
* Waits are hybrid: an ordinary ``asyncio.sleep`` until ``spin_s`` before the due
  time, then cooperative spinning (``sleep(0)``, so in-flight responses keep being
  read) until it. Event-loop timers have millisecond granularity (uvloop's are whole
  milliseconds); the spin is what gets lag below one millisecond.

Failures are records, not exceptions: a request past its deadline is a
``timeout`` span, a refused or dropped connection a ``connection_error`` span, a 4xx/5xx
an ``http_error`` span, a malformed stream or an answer of a shape no chat completion
has a ``protocol_error`` span. Every scheduled request is exactly one span: whatever
the server sends, or the client fails to build or send, ends in that request's span.

Spans reach the disk while the replay runs: :func:`run_replay` hands finished spans to
a :class:`~traffic.spans.SpanLog` (``.spans.part<k>.log`` in the output folder) in
the schedule's gaps, like the garbage collector's passes, and turns the log into
``spans.parquet`` at the end. Memory holds only the spans not written yet; a replay that
is killed leaves its log, whose complete frames :func:`~traffic.spans.read_span_log`
reads (:func:`span_logs` lists the logs of an output folder).

Past one core, :func:`run_replay` splits the schedule round-robin over ``workers``
spawned processes that all anchor to the same absolute start time; each writes its own
log and they are merged into one ``spans.parquet``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import json
import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.compute as pc

from traffic.answer import (
    Answer,
    BadResponse,
    StreamError,
    apply_headers,
    http_error_class,
    read_sse,
    response_headers,
)
from traffic.schedule import ScheduledRequest
from traffic.spans import Span, SpanLog, merge_spans
from traffic.transport import ClientSpec, classify_error, limits_for, run_async

__all__ = ["ReplayPlan", "ReplayResult", "replay", "run_replay", "span_logs"]

ClientSource = httpx.AsyncClient | Callable[[], httpx.AsyncClient]


@dataclass(frozen=True)
class ReplayPlan:
    """What to send and how: the schedule plus the knobs of the timing model."""

    requests: Sequence[ScheduledRequest]
    speedup: float = 1.0
    timeout_s: float = 60.0
    start_at: float | None = None
    """Absolute start (epoch seconds) shared by all workers; ``None``: ``lead_s`` from now."""
    lead_s: float = 0.05
    spin_s: float = 0.001
    """Last part of each wait spent yielding instead of sleeping (timer granularity)."""
    tune_gc: bool = True
    """Collect garbage only in the schedule's gaps while sending (see ``_IdleCollector``)."""

    @property
    def duration_s(self) -> float:
        return self.requests[-1].offset_s / self.speedup if self.requests else 0.0

    @property
    def rate(self) -> float:
        """Mean requests/s."""
        n = len(self.requests)
        return n / self.duration_s if n > 1 and self.duration_s > 0 else float(n)

    @property
    def peak_in_flight(self) -> int:
        """The most requests sent within any ``timeout_s`` window: no more can be in
        flight at once, since each holds its connection for at most ``timeout_s``."""
        sends = sorted(r.offset_s / self.speedup for r in self.requests)
        peak, first = 0, 0
        for last, sent in enumerate(sends):
            while sends[first] <= sent - self.timeout_s:
                first += 1
            peak = max(peak, last - first + 1)
        return peak

    @property
    def peak_rate(self) -> float:
        """``peak_in_flight`` as a rate over ``timeout_s``: what sizes the connection
        pool (``limits_for(peak_rate, timeout_s)`` holds the busiest window). A pool
        sized for the mean rate makes a burst wait for connections, the replay's own
        queue recorded as schedule lag."""
        return self.peak_in_flight / self.timeout_s


@dataclass
class ReplayResult:
    spans_path: Path
    telemetry_path: Path | None
    spans: int
    statuses: dict[str, int]
    lag_p50_ms: float | None
    lag_p99_ms: float | None
    lag_max_ms: float | None
    wall_s: float
    telemetry_samples: int = 0
    telemetry_gaps: int = 0
    workers: int = 1
    transport: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# --- one request ---------------------------------------------------------------------


async def _send(
    req: ScheduledRequest,
    request: httpx.Request | Exception,
    client: httpx.AsyncClient,
    timeout_s: float,
    due: float,
    to_epoch: Callable[[float], float],
    out: list[Span],
) -> None:
    clock = time.monotonic
    sent = clock()
    span = Span(
        span_id=req.span_id,
        request_id=req.request_id,
        mode=req.mode,
        tenant_id=req.tenant_id,
        endpoint=req.endpoint,
        intended_at=to_epoch(due),
        sent_at=to_epoch(sent),
        schedule_lag_ms=(sent - due) * 1000.0,
        latency_ms=0.0,
        status="ok",
        request_body=req.body.decode(),
        pinned_replica=req.pinned_replica,
        expect=req.expect,
        tags=req.tags,
    )
    answer = Answer()
    deadline = asyncio.timeout(timeout_s)
    try:
        if isinstance(request, Exception):  # it could not be built: its span says why
            raise request
        async with deadline:
            response = await client.send(request, stream=True)
            try:
                span.http_status = response.status_code
                headers = response_headers(response)
                apply_headers(span, headers)
                if response.status_code >= 400:
                    body = await response.aread()
                    span.status = "http_error"
                    span.error_class = http_error_class(response.status_code, body)
                elif "text/event-stream" in headers.get("content-type", ""):
                    await read_sse(response, answer, clock)
                    if not answer.done and answer.finish_reason is None:
                        span.status, span.error_class = "protocol_error", "IncompleteStream"
                else:  # a server that ignored stream=true: one JSON completion
                    body = await response.aread()
                    answer.chunk(json.loads(body), clock())
                    answer.done = True
            finally:
                await response.aclose()
    except TimeoutError as exc:
        span.status = "timeout"
        span.error_class = "RequestTimeout" if deadline.expired() else type(exc).__name__
    except BadResponse:
        span.status, span.error_class = "protocol_error", "BadResponse"
    except StreamError as exc:
        span.status, span.error_class = "protocol_error", str(exc)
    except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
        span.status, span.error_class = "protocol_error", type(exc).__name__
    except (httpx.HTTPError, OSError) as exc:
        span.status, span.error_class = classify_error(exc)
    except Exception as exc:  # anything else a client or a server can do: still a span
        span.status, span.error_class = "protocol_error", type(exc).__name__
    span.latency_ms = (clock() - sent) * 1000.0
    if answer.first_token is not None:
        span.ttft_ms = (answer.first_token - sent) * 1000.0
    answer.fill(span)
    out.append(span)


# --- the engine ----------------------------------------------------------------------


class _Progress:
    """A rich progress bar redrawn from the loop at 2 Hz (never from a thread).

    Redrawing per request would cost more than sending it; a refresh thread would
    contend for the GIL at arbitrary moments and show up as schedule lag.
    """

    def __init__(self, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self.progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            auto_refresh=False,
            transient=False,
        )
        self.sent = self.progress.add_task("sent", total=total)
        self.done = self.progress.add_task("answered", total=total)

    async def run(self, sent: Callable[[], int], done: Callable[[], int]) -> None:
        with self.progress:
            try:
                while True:
                    self.progress.update(self.sent, completed=sent())
                    self.progress.update(self.done, completed=done())
                    self.progress.refresh()
                    await asyncio.sleep(0.5)
            except asyncio.CancelledError:
                self.progress.update(self.sent, completed=sent())
                self.progress.update(self.done, completed=done())
                self.progress.refresh()
                raise


class _IdleCollector:
    """Run the cyclic garbage collector in the gaps of the schedule, never at send time.

    Measured at 500 req/s on one core with CPython's automatic collection: a
    young-generation pass (~1 ms: each of the last ~80 requests' spans, headers and
    answers is traversed) fired every ~80 requests, and the request just created was
    sent after it: a periodic tail that set the p99. Older-generation passes re-walk
    every span kept so far (up to 160 ms each at 2000 req/s). Those passes reclaimed
    almost nothing: the replay's garbage is freed by reference counting. So, while
    sending, automatic collection is off and:

    * before each wait, :meth:`pick` says whether a young pass is due (``young``
      tracked allocations pending) *and* fits in the wait until the next request
      (the last pass's measured cost plus a margin); the loop then yields once, so
      the request it just created is written first, and :meth:`collect` runs the pass;
    * after each pass, ``gc.freeze()`` moves the survivors (mostly spans kept for the
      output) out of the collector's sight, so no pass ever walks them again and the
      older generations stay empty;
    * when the waits are too short for a pass (thousands of requests a second), one
      runs anyway once ``overdue`` allocations are pending: a few requests late by
      about a millisecond, instead of a pass of hundreds of milliseconds later on.

    On exit everything frozen is handed back to the collector and automatic
    collection is restored.
    """

    def __init__(self, enabled: bool, young: int = 1000, overdue: int = 2000) -> None:
        self.enabled, self.young, self.overdue = enabled, young, overdue
        self.per_object_s = 3e-7  # of the last pass; a first guess until one is measured
        self.margin_s = 0.0003

    def __enter__(self) -> _IdleCollector:
        if self.enabled:
            self.was_enabled = gc.isenabled()
            gc.disable()
            gc.freeze()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            gc.unfreeze()
            if self.was_enabled:
                gc.enable()

    def pick(self, idle_s: float) -> bool:
        """Whether to run a pass now, with ``idle_s`` until the next request is due."""
        if not self.enabled:
            return False
        pending = gc.get_count()[0]
        if pending < self.young:
            return False
        return pending >= self.overdue or idle_s >= pending * self.per_object_s + self.margin_s

    def collect(self) -> None:
        pending = max(1, gc.get_count()[0])
        started = time.perf_counter()
        gc.collect(0)
        gc.freeze()
        self.per_object_s = (time.perf_counter() - started) / pending


class _Flusher:
    """Hand finished spans to the span log in the schedule's gaps, never at send time.

    Writing costs about a microsecond a span plus a system call (``SpanLog``), paid on
    the loop; so, like :class:`_IdleCollector`, before each wait :meth:`pick` says how
    many of the spans finished so far fit in the wait (the measured cost per span plus a
    margin). They are written once ``batch`` have finished or ``every_s`` has passed
    since the last write: a killed replay loses at most about ``every_s`` of answers.
    When the waits are too short (thousands of requests a second), ``overdue`` finished
    spans are written anyway: a few requests a millisecond or two late, rather than
    memory growing with the run. Without a log the spans stay in memory.
    """

    def __init__(
        self,
        log: SpanLog | None,
        done: list[Span],
        batch: int = 256,
        every_s: float = 1.0,
        overdue: int = 2048,
    ) -> None:
        self.log, self.done = log, done
        self.batch, self.every_s, self.overdue = batch, every_s, overdue
        self.per_span_s = 2e-6  # a first guess until one write is measured
        self.margin_s = 0.0003
        self.last = time.monotonic()
        self.written = 0

    def pick(self, idle_s: float) -> int:
        """How many finished spans to write now, with ``idle_s`` until the next send."""
        n = len(self.done)
        if self.log is None or n == 0:
            return 0
        if n >= self.overdue:
            return n
        if n < self.batch and time.monotonic() - self.last < self.every_s:
            return 0
        fits = int((idle_s - self.margin_s) / self.per_span_s)
        return min(n, fits) if fits >= min(n, 32) else 0

    def write(self, n: int | None = None) -> None:
        """Write the first ``n`` finished spans (all when None) to the log."""
        n = len(self.done) if n is None else min(n, len(self.done))
        if self.log is None or n == 0:
            return
        batch = self.done[:n]
        del self.done[:n]  # in place: the requests in flight append to this list
        started = time.perf_counter()
        self.log.write(batch)
        if n >= 32:
            self.per_span_s = (time.perf_counter() - started) / n
        self.last = time.monotonic()
        self.written += n


class _RequestBuilder:
    """``client.build_request`` with the client-level merges done once per replay.

    ``build_request`` re-parses the URL and re-merges the client's default headers,
    cookies and params for every call, which cost more than sending the request. They
    are static for a replay, so they are merged once (through ``build_request``
    itself, per endpoint) and each request is an ``httpx.Request`` over the result.
    """

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.templates: dict[str, httpx.Request] = {}
        self.defaults: dict[tuple[str, ...], list[tuple[str, str]]] = {}

    def _defaults(self, template: httpx.Request, names: tuple[str, ...]) -> list[tuple[str, str]]:
        """The client's headers that the request does not set itself."""
        own = {n.lower() for n in names} | {"content-length", "content-type"}
        return [(k, v) for k, v in template.headers.multi_items() if k.lower() not in own]

    def __call__(self, req: ScheduledRequest) -> httpx.Request:
        template = self.templates.get(req.endpoint)
        if template is None:
            template = self.client.build_request("POST", req.endpoint, content=b"")
            self.templates[req.endpoint] = template
        names = tuple(k for k, _ in req.headers)
        defaults = self.defaults.get(names)
        if defaults is None:
            defaults = self.defaults[names] = self._defaults(template, names)
        headers = [*defaults, *req.headers]
        try:
            return self._request(template, headers, req.body)
        except UnicodeEncodeError:
            # httpx encodes str headers as ASCII; a tenant id captured from a UTF-8
            # header goes back out as the same UTF-8 bytes (any str can be encoded so)
            raw = [(_utf8(k), _utf8(v)) for k, v in headers]
            return self._request(template, raw, req.body)

    @staticmethod
    def _request(
        template: httpx.Request,
        headers: list[tuple[str, str]] | list[tuple[bytes, bytes]],
        body: bytes,
    ) -> httpx.Request:
        return httpx.Request(
            "POST", template.url, headers=headers, content=body, extensions=template.extensions
        )


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


async def replay(
    plan: ReplayPlan,
    client: ClientSource,
    *,
    progress: bool = False,
    log: SpanLog | None = None,
) -> list[Span]:
    """Send ``plan.requests`` open loop; return one span per request, in send order.

    ``client`` is an ``httpx.AsyncClient`` (closed by the caller) or a zero-argument
    factory (the client it makes is closed here). Its ``base_url`` is the target.
    With a ``log``, finished spans are written to it while the replay runs (also when
    it is cancelled) and the list returned is empty.
    """
    owned = not isinstance(client, httpx.AsyncClient)
    http = client if isinstance(client, httpx.AsyncClient) else client()
    loop = asyncio.get_running_loop()
    mono = time.monotonic
    start_at = plan.start_at if plan.start_at is not None else time.time() + plan.lead_s
    start_mono = mono() + (start_at - time.time())

    def to_epoch(t: float) -> float:
        return start_at + (t - start_mono)

    spans: list[Span] = []
    flusher = _Flusher(log, spans)
    inflight: set[asyncio.Task[None]] = set()
    speedup, spin, timeout_s = plan.speedup, plan.spin_s, plan.timeout_s
    n_sent = 0
    bar = _Progress(len(plan.requests)) if progress else None
    bar_task = (
        loop.create_task(bar.run(lambda: n_sent, lambda: flusher.written + len(spans)))
        if bar
        else None
    )
    build = _RequestBuilder(http)
    try:
        with _IdleCollector(plan.tune_gc) as collector:
            for req in plan.requests:
                # built before the wait: its cost is paid while idle, not after the due time
                request: httpx.Request | Exception
                try:
                    request = build(req)
                except Exception as exc:  # e.g. an endpoint httpx refuses: the span says so
                    request = exc
                due = start_mono + req.offset_s / speedup
                delay = due - mono()
                n_write = flusher.pick(delay)
                if n_write or collector.pick(delay):
                    # first let the request created just now start: work done before
                    # it writes its bytes would make that request the late one
                    await asyncio.sleep(0)
                    flusher.write(n_write)
                    if collector.pick(due - mono()):
                        collector.collect()
                    delay = due - mono()
                if delay > spin:
                    await asyncio.sleep(delay - spin)
                    delay = due - mono()
                while delay > 0:
                    await asyncio.sleep(0)
                    delay = due - mono()
                task = loop.create_task(_send(req, request, http, timeout_s, due, to_epoch, spans))
                inflight.add(task)
                task.add_done_callback(inflight.discard)
                n_sent += 1
            while inflight:
                await asyncio.wait(set(inflight), timeout=flusher.every_s if log else None)
                flusher.write()  # nothing left to send: no gap to wait for
    finally:
        for task in inflight:
            task.cancel()
        flusher.write()  # what finished before a cancellation is kept too
        if bar_task is not None:
            bar_task.cancel()
            await asyncio.gather(bar_task, return_exceptions=True)
        if owned:
            await http.aclose()
    spans.sort(key=lambda s: s.intended_at)
    return spans


# --- running it: processes, files, telemetry -----------------------------------------


def span_logs(out_dir: Path) -> list[Path]:
    """The span logs a replay into ``out_dir`` is writing, or left when it was killed."""
    return sorted(out_dir.glob(".spans.part*.log"))


def _worker(plan: ReplayPlan, client: ClientSpec, part: Path) -> int:
    """One shard in a spawned process: replay it into its own span log."""
    with SpanLog(part) as log:
        run_async(lambda: replay(plan, client.build, log=log))
    return log.rows


def _merge(parts: list[Path], path: Path) -> pa.Table:
    """The span logs into one ``spans.parquet`` (:func:`merge_spans`); the logs are
    removed after."""
    table = merge_spans(parts, path)
    for p in parts:
        p.unlink(missing_ok=True)
    return table


def _summary(table: pa.Table) -> tuple[dict[str, int], float | None, float | None, float | None]:
    statuses = dict(Counter(table.column("status").to_pylist()))
    if table.num_rows == 0:
        return statuses, None, None, None
    lag = table.column("schedule_lag_ms")
    p50, p99 = pc.quantile(lag, q=[0.5, 0.99], interpolation="nearest").to_pylist()
    return statuses, p50, p99, pc.max(lag).as_py()


def run_replay(
    plan: ReplayPlan,
    out_dir: Path,
    client: ClientSpec | Callable[[], httpx.AsyncClient],
    *,
    workers: int = 1,
    sampler: Any | None = None,
    progress: bool = False,
) -> ReplayResult:
    """Replay ``plan`` and write ``out_dir/spans.parquet`` (+ ``telemetry.parquet``).

    Spans are logged to ``out_dir/.spans.part<k>.log`` as they finish and the logs
    become ``spans.parquet`` at the end; if the replay dies, the logs stay
    (:func:`span_logs`, :func:`~traffic.spans.read_span_log`).

    ``client`` is a :class:`~traffic.transport.ClientSpec` (required for
    ``workers > 1``: each process builds its own client) or a client factory.
    ``sampler`` is a :class:`~traffic.sampler.SamplerConfig`; the sampler runs in its
    own thread with its own event loop so scraping and parsing Prometheus text never
    stalls the replay loop.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    spans_path = out_dir / "spans.parquet"
    if isinstance(client, ClientSpec) and client.limits is None:
        per_worker = plan.peak_rate / max(1, workers)
        client = replace(client, limits=limits_for(per_worker, plan.timeout_s))
    lead = plan.lead_s if workers == 1 else max(plan.lead_s, 1.5 + 0.5 * workers)
    start_at = plan.start_at if plan.start_at is not None else time.time() + lead
    plan = replace(plan, start_at=start_at)

    stop = threading.Event()
    sampled: dict[str, Any] = {}
    sampler_thread = None
    if sampler is not None:
        from traffic.sampler import run_sampler

        def sample() -> None:
            sampled["result"] = run_sampler(sampler, stop, out_dir / "telemetry.parquet")

        sampler_thread = threading.Thread(target=sample, name="telemetry-sampler", daemon=True)
        sampler_thread.start()

    for stale in span_logs(out_dir):  # a killed earlier run's: this run replaces them
        stale.unlink()
    parts = [out_dir / f".spans.part{k}.log" for k in range(max(1, workers))]
    t0 = time.monotonic()
    try:
        if workers <= 1:
            factory = client.build if isinstance(client, ClientSpec) else client
            with SpanLog(parts[0]) as log:
                run_async(lambda: replay(plan, factory, progress=progress, log=log))
            table = _merge(parts, spans_path)
        else:
            if not isinstance(client, ClientSpec):
                raise TypeError(
                    "workers > 1 needs a ClientSpec: each process builds its own client"
                )
            ctx = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
                futures = [
                    pool.submit(
                        _worker, replace(plan, requests=plan.requests[k::workers]), client, parts[k]
                    )
                    for k in range(workers)
                ]
                for f in futures:
                    f.result()
            table = _merge(parts, spans_path)
    finally:
        stop.set()
        if sampler_thread is not None:
            sampler_thread.join(timeout=10)
    wall = time.monotonic() - t0

    statuses, p50, p99, lag_max = _summary(table)
    telemetry = sampled.get("result")
    transport = client.transport if isinstance(client, ClientSpec) else "custom"
    return ReplayResult(
        spans_path=spans_path,
        telemetry_path=telemetry.path if telemetry else None,
        spans=table.num_rows,
        statuses=statuses,
        lag_p50_ms=p50,
        lag_p99_ms=p99,
        lag_max_ms=lag_max,
        wall_s=wall,
        telemetry_samples=telemetry.samples if telemetry else 0,
        telemetry_gaps=telemetry.gaps if telemetry else 0,
        workers=max(1, workers),
        transport=transport,
    )
