"""Core claims: one engine per core on a host, whatever ranks Serve hands out."""

from __future__ import annotations

import multiprocessing

from serving.cores import claim_core


def test_a_stable_deployment_keeps_each_rank_on_its_own_core(tmp_path):
    first, second = claim_core(0, [0, 1], tmp_path), claim_core(1, [0, 1], tmp_path)
    assert (first.core, second.core) == (0, 1)


def test_a_replaced_replicas_new_rank_does_not_share_a_live_core(tmp_path):
    """Ranks are not compacted: after a replacement the live replicas can be ranks 0
    and 2, which ``rank % cores`` put on the same core."""
    rank0 = claim_core(0, [0, 1], tmp_path)
    rank2 = claim_core(2, [0, 1], tmp_path)
    assert (rank0.core, rank2.core) == (0, 1) and rank2.exclusive


def test_a_released_core_is_claimed_again(tmp_path):
    old = claim_core(1, [0, 1], tmp_path)
    old.release()
    assert claim_core(1, [0, 1], tmp_path).core == 1


def test_more_replicas_than_cores_share_the_ranks_own_core(tmp_path):
    held = [claim_core(rank, [0, 1], tmp_path) for rank in (0, 1)]
    extra = claim_core(3, [0, 1], tmp_path)
    assert extra.core == 1 and not extra.exclusive and all(c.exclusive for c in held)


def _claim_in_child(lock_dir, queue):
    queue.put(claim_core(0, [0, 1], lock_dir).core)


def test_a_claim_dies_with_its_process(tmp_path):
    """Replicas are processes: the OS drops a dead replica's lock, no stale claim."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_claim_in_child, args=(tmp_path, queue))
    child.start()
    child.join(30)
    assert queue.get(timeout=5) == 0
    assert claim_core(0, [0, 1], tmp_path).core == 0


def test_a_new_replica_waits_for_an_old_one_to_free_a_core(tmp_path):
    """A rolling restart: both cores held by old replicas when the new one starts."""
    import asyncio

    from serving.cores import claim_core_waiting

    old = [claim_core(rank, [0, 1], tmp_path) for rank in (0, 1)]

    async def restart():
        waiting = asyncio.create_task(claim_core_waiting(2, wait_s=10, poll_s=0.01,
                                                         cores=[0, 1], lock_dir=tmp_path))
        await asyncio.sleep(0.1)
        assert not waiting.done()  # no shared fallback while the old replicas live
        old[1].release()            # the old rank 1 shuts down
        return await waiting

    new = asyncio.run(restart())
    assert new.core == 1 and new.exclusive
    # ...and the next new replica cannot take a core the first one already holds
    assert claim_core(0, [0, 1], tmp_path).exclusive is False


def test_waiting_gives_up_and_shares_when_no_core_frees(tmp_path):
    import asyncio

    from serving.cores import claim_core_waiting

    held = [claim_core(rank, [0, 1], tmp_path) for rank in (0, 1)]
    shared = asyncio.run(claim_core_waiting(1, wait_s=0.05, poll_s=0.01, cores=[0, 1],
                                            lock_dir=tmp_path))
    assert shared.core == 1 and not shared.exclusive and held
