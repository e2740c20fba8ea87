"""Which CPU core a replica's engine is bound to: one core per live engine on a host.

vLLM's CPU engine binds its OpenMP threads to ``VLLM_CPU_OMP_THREADS_BIND`` (core 0
when unset), so two replicas on one host must be told different cores. Serve ranks
are a poor key on their own: a replaced replica gets a new rank and ranks are not
compacted, so two live replicas can be ranks 0 and 2 — ``rank % cores`` put both
engines on core 0 and halved a scenario run's throughput. Each replica therefore
claims a core with an exclusive ``flock`` on a per-core file, held for the life of the
replica process; the operating system drops the lock when that process dies, so a
crashed replica never leaves a stale claim. The rank's own core is tried first, so a
stable deployment keeps rank 0 on core 0, rank 1 on core 1.

During a rolling restart the new replicas start while the old ones still hold every
core. A new replica that took a core without holding its lock let the next one claim
the same core (the matrix caught two engines on core 0 for a whole healthy run), so a
replica waits for a core to free up (:func:`claim_core_waiting`) and shares only when
none does in time.

The lock files live in ``<temp dir>/cluster-eval-cores-<uid>`` — one per user and
host, whatever project or home a replica belongs to, since cores are per host. The
name is predictable, so the directory is created private (0700) and refused, with
the reason, when it is a symlink, belongs to another user or others can write to it.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import IO

from serving.errors import StackError

__all__ = ["CoreClaim", "claim_core", "claim_core_waiting"]


class CoreClaim:
    """A core this process holds (``core``), until :meth:`release` or process exit."""

    def __init__(self, core: int, handle: IO[str] | None) -> None:
        self.core = core
        self._handle = handle

    @property
    def exclusive(self) -> bool:
        """False when every core was held by another replica and this one shares."""
        return self._handle is not None

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file drops the flock
            self._handle = None


def _unsafe(info: os.stat_result) -> str | None:
    if not stat.S_ISDIR(info.st_mode):
        return "is not a directory (a symlink or a file)"
    if info.st_uid != os.getuid():
        return f"is owned by uid {info.st_uid}, not {os.getuid()}"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"is writable by others (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def _lock_dir() -> Path:
    path = Path(tempfile.gettempdir()) / f"cluster-eval-cores-{os.getuid()}"
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    problem = _unsafe(path.lstat())  # lstat: a symlink planted in its place is not followed
    if problem:
        raise StackError(
            f"the core lock directory {path} {problem}; refusing to use it — remove it "
            "(or set TMPDIR to a private directory) so a replica can create it 0700"
        )
    return path


def claim_core(rank: int, cores: list[int] | None = None,
               lock_dir: Path | None = None) -> CoreClaim:
    """The first core, from the rank's own (``cores[rank % len(cores)]``) onwards, that
    no other live replica on this host holds; when all are held (more replicas than
    cores), the rank's own core, shared."""
    cores = sorted(os.sched_getaffinity(0)) if cores is None else cores
    if not cores:
        raise ValueError("no CPU core to bind to")
    lock_dir = _lock_dir() if lock_dir is None else lock_dir
    for step in range(len(cores)):
        core = cores[(rank + step) % len(cores)]
        handle = (lock_dir / f"core-{core}.lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return CoreClaim(core, handle)
    return CoreClaim(cores[rank % len(cores)], None)


async def claim_core_waiting(rank: int, *, wait_s: float = 120.0, poll_s: float = 0.5,
                             cores: list[int] | None = None,
                             lock_dir: Path | None = None) -> CoreClaim:
    """:func:`claim_core`, retried while every core is held (old replicas of a rolling
    restart shutting down), for up to ``wait_s``; then the shared fallback."""
    deadline = time.monotonic() + wait_s
    while True:
        claim = claim_core(rank, cores, lock_dir)
        if claim.exclusive or time.monotonic() >= deadline:
            return claim
        await asyncio.sleep(poll_s)
