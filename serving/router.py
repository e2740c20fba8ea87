"""Ray Serve request router: replica pinning, else power-of-two-choices.

The pin arrives as ``PendingRequest.metadata.session_id``: the Serve proxy fills it
from the header named by ``RAY_SERVE_SESSION_ID_HEADER_KEY``, which ``stack up`` sets
to ``x-pin-replica`` on the Ray head (a production cluster sets the same variable in
its RayService pods). The rule itself lives in ``serving.routing``.
"""

from __future__ import annotations

import random

from ray.serve.request_router import PendingRequest, RequestRouter, RunningReplica

from serving.routing import choose


class PinnedPowerOfTwoRouter(RequestRouter):
    _rng = random.Random()

    async def choose_replicas(
        self,
        candidate_replicas: list[RunningReplica],
        pending_request: PendingRequest | None = None,
    ) -> list[list[RunningReplica]]:
        pin = pending_request.metadata.session_id if pending_request is not None else None
        ids = [r.replica_id.unique_id for r in candidate_replicas]
        return choose(candidate_replicas, ids, pin or None, self._rng)
