"""Aim a scenario's faults at replicas that exist, and confirm they reached one.

A fault aimed at ``replica_rank: k`` names a replica only on a fresh deployment: Serve
does not compact ranks after a replacement, so after a scale-down or a rolling restart
(an earlier scenario's, an earlier test's) rank 1 may be nobody, the fault lands on no
replica, and the run tests nothing while its verdict looks like a miss. So the runner
first brings the scenario's deployment up *without* its faults, reads the replicas
that run, and rewrites each rank-aimed fault to the ``replica_id`` of the k-th running
replica (sorted by id). The flow then applies the config with its faults: a
``user_config``-only change, reconfigured in place on those same replicas.

After the run, the spans say which faults answered: a replica that resolved a fault
labels every response ``<config_version>+fault:<kind>`` (``serving/faults.py``). A
fault kind no span carries reached no replica, and the run is reported as not
exercised rather than read as a verdict on the check.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

FAULT_REACH_SQL = (Path(__file__).parent / "sql" / "fault_reach.sql").read_text()


def _user_configs(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The user_config of each of the first application's deployments that has one."""
    deployments = config["applications"][0].get("deployments") or []
    return [d["user_config"] for d in deployments if d.get("user_config")]


def faults(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every fault of the first application's deployments, as written in the config."""
    return [f for user_config in _user_configs(config) for f in user_config.get("faults") or []]


def without_faults(config: dict[str, Any]) -> dict[str, Any]:
    """The same config with no fault on any deployment (the rest of user_config kept)."""
    stripped = copy.deepcopy(config)
    for user_config in _user_configs(stripped):
        if "faults" in user_config:
            user_config["faults"] = []
    return stripped


def aim_by_id(config: dict[str, Any], running_replica_ids: list[str]) -> dict[str, Any]:
    """Rewrite ``replica_rank: k`` to the ``replica_id`` of the k-th running replica.

    Raises ``ValueError`` when k is past the replicas that run: the scenario asks for a
    replica its own deployment does not have.
    """
    ids = sorted(running_replica_ids)
    aimed = copy.deepcopy(config)
    for fault in faults(aimed):
        rank = fault.pop("replica_rank", None)
        if rank is None:
            continue
        if rank >= len(ids):
            raise ValueError(
                f"a {fault.get('kind')} fault is aimed at replica_rank {rank}, but the "
                f"deployment runs {len(ids)} replica(s)")
        fault["replica_id"] = ids[rank]
    return aimed


def needs_aiming(config: dict[str, Any]) -> bool:
    return any(f.get("replica_rank") is not None for f in faults(config))


def unreached(db: Path, run_id: str, config: dict[str, Any]) -> list[str]:
    """The fault kinds of ``config`` that no span of the run carries, with their target."""
    from warehouse import opened

    missing = []
    with opened(db) as con:
        for fault in faults(config):
            kind = fault.get("kind")
            spans = con.execute(FAULT_REACH_SQL, {"run_id": run_id, "kind": kind}).fetchall()
            if spans[0][0] == 0:
                target = "all replicas" if fault.get("all_replicas") else next(
                    (f"{key} {fault[key]}" for key in ("replica_id", "replica_rank")
                     if key in fault), "no target")
                missing.append(f"{kind} fault ({target}) reached no replica")
    return missing
