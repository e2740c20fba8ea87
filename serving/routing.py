"""Which replicas a request may go to — the pinning router's rule, without Ray.

A pinned request (``x-pin-replica``) goes to that replica and nowhere else, waiting
for it if it is busy: the golden set must measure *that* replica. An unknown id (a
replica that scaled away) falls back to normal routing rather than failing. Normal
routing is power-of-two-choices: two random candidates, and Serve sends to the one
with fewer requests in flight.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

R = TypeVar("R")


def choose(
    candidates: Sequence[R],
    ids: Sequence[str],
    pin: str | None,
    rng: random.Random,
) -> list[list[R]]:
    """Ranked candidate groups for Serve's router (first group preferred).

    ``ids[i]`` is the replica id of ``candidates[i]``.
    """
    if not candidates:
        return []
    if pin:
        for replica, replica_id in zip(candidates, ids, strict=True):
            if replica_id == pin:
                return [[replica]]
    if len(candidates) <= 2:
        return [list(candidates)]
    return [rng.sample(list(candidates), 2)]
