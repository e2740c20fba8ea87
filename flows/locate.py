"""Print where the latest finished run of a deployment left its files (used by scripts/).

    python -m flows.locate cluster-eval/nightly-cluster-eval

Reads the run from the Prefect API (``PREFECT_API_URL``) rather than parsing the
output of ``prefect deployment run``.
"""

from __future__ import annotations

import sys
from typing import Any

from cluster_eval.settings import get_settings
from flows.pipeline import run_files


def latest_run(deployment: str) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    finished = [StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED]
    with get_client(sync_client=True) as client:
        found = client.read_deployment_by_name(deployment)
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[found.id])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=finished))),
            sort=FlowRunSort.END_TIME_DESC, limit=1)
    return runs[0] if runs else None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    deployment = args[0] if args else "cluster-eval/nightly-cluster-eval"
    run = latest_run(deployment)
    if run is None:
        print(f"no runs of {deployment} yet")
        return 1
    print(f"run       {run.name} ({run.id}): {run.state_name}")
    if run.state and run.state.message:
        print(f"message   {run.state.message}")
    for name, path in run_files(run.parameters or {}, run.id, get_settings()).items():
        mark = "" if path.exists() else "  (not written)"
        print(f"{name:<9} {path}{mark}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
