"""Workload builders: real prompts from public data sets, arrivals from named processes.

``build_workload(WorkloadSpec)`` makes a synthetic-but-realistic workload (task pools
from BFCL, SQuAD 2.0 and GSM8K; arrivals from Poisson, gamma, the Azure LLM trace or a
compressed multi-tenant day); ``build_golden()`` makes the pinned golden set.
"""

from traffic.builders.arrivals import ARRIVAL_PROCESSES, Arrival, ArrivalProcess, register_arrivals
from traffic.builders.golden import GOLDEN_PATH, build_golden
from traffic.builders.pool import TaskPool, known_kinds
from traffic.builders.sources import SHIPPED_DATA_DIR
from traffic.builders.spec import TenantSpec, WorkloadSpec, load_spec
from traffic.builders.tasks import TASK_KINDS, Task, register_tasks
from traffic.builders.workload import build_workload

__all__ = [
    "ARRIVAL_PROCESSES",
    "GOLDEN_PATH",
    "SHIPPED_DATA_DIR",
    "TASK_KINDS",
    "Arrival",
    "ArrivalProcess",
    "Task",
    "TaskPool",
    "TenantSpec",
    "WorkloadSpec",
    "build_golden",
    "build_workload",
    "known_kinds",
    "load_spec",
    "register_arrivals",
    "register_tasks",
]
