"""A vLLM stat logger that feeds this replica's ``EngineState``.

vLLM calls stat loggers with the scheduler's stats after engine steps; keeping the
latest values in-process is what makes the at-arrival headers cheap (no scrape).
"""

from __future__ import annotations

from collections.abc import Callable

from vllm.config import VllmConfig
from vllm.v1.metrics.loggers import StatLoggerBase

from serving.telemetry import EngineState


def stat_logger_factory(state: EngineState) -> Callable[[VllmConfig, int], StatLoggerBase]:
    class EngineStateLogger(StatLoggerBase):
        def __init__(self, vllm_config: VllmConfig, engine_index: int = 0) -> None:
            self.state = state

        def record(self, scheduler_stats, iteration_stats, mm_cache_stats=None, engine_idx=0):
            if scheduler_stats is None:
                return
            self.state.update(
                running=scheduler_stats.num_running_reqs,
                waiting=scheduler_stats.num_waiting_reqs,
                kv_cache_usage=scheduler_stats.kv_cache_usage,
            )

        def log_engine_initialized(self) -> None:
            pass

    return EngineStateLogger
