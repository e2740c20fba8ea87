"""The Ray Serve application: one deployment whose replicas each own a vLLM engine.

Why not ``ray.serve.llm``: it splits the HTTP ingress and the engine (``LLMServer``)
into two deployments. Our telemetry headers must come from the replica that ran the
request, and the pinning router must see the HTTP request's pin header; the proxy
hands that header only to the ingress deployment's router. One FastAPI-ingress
deployment that wraps vLLM's *own* OpenAI app (``vllm.entrypoints.launchers``) keeps
vLLM's request/response semantics and puts router, engine and headers in one replica.
It still uses vLLM's Ray metrics logger, so ``ray_vllm_*`` series carry ``ReplicaId``
exactly as under ``ray.serve.llm``.

ServeConfigV2 names this module as ``import_path: serving.app:build_app``; the
``args`` block is ``AppArgs``; ``user_config`` is ``serving.user_config.UserConfig``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.serve import Application

from serving.cores import claim_core_waiting
from serving.cpu import CPU_NATIVE, cpu_flags, native_dtype
from serving.middleware import ReplicaRuntime, TelemetryMiddleware
from serving.telemetry import EngineState
from serving.user_config import UserConfig
from traffic.headers import HEADER_TENANT_ID

logger = logging.getLogger("ray.serve")

EMBEDDED_MODEL = "embedded:smollm2"


class CaptureArgs(BaseModel):
    """Production traffic capture (``traffic.capture``), off unless configured."""

    model_config = ConfigDict(extra="forbid")

    directory: str = Field(description="Where rotating capture files go (one writer per replica).")
    sample_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    file_format: str = Field(default="jsonl", pattern="^(jsonl|parquet)$")
    queue_size: int = Field(default=10_000, ge=1)
    tenant_header: str = HEADER_TENANT_ID
    redact_patterns: list[str] | None = Field(
        default=None, description="Regexes scrubbed from bodies; default: e-mails and API keys."
    )


class AppArgs(BaseModel):
    """The ``args`` of the application in the ServeConfigV2 file."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        default=EMBEDDED_MODEL,
        description="HF id or local folder; 'embedded:smollm2' is the prepared SmolLM2.",
    )
    served_model_name: str = "smollm2-135m-instruct"
    engine_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="vLLM engine/frontend arguments (CLI names, '_' form)."
    )
    cpu_kvcache_space_gib: int | None = Field(
        default=None, ge=1, description="VLLM_CPU_KVCACHE_SPACE (whole GiB) for CPU engines."
    )
    pin_cores: bool = Field(
        default=True, description="Bind each CPU replica's engine to a core of its own."
    )
    capture: CaptureArgs | None = None


def resolve_model(model: str) -> str:
    if model != EMBEDDED_MODEL:
        return os.path.expanduser(model)
    from cluster_eval.settings import get_settings

    return str(get_settings().model_dir)


@serve.deployment(
    name="LLMReplica",
    max_ongoing_requests=16,
    health_check_period_s=10,
    health_check_timeout_s=30,
    request_router_config={"request_router_class": "serving.router:PinnedPowerOfTwoRouter"},
)
@serve.ingress()
class LLMReplica:
    async def __init__(self, args: dict[str, Any]) -> None:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.entrypoints.launchers.api_server.app_state import init_app_state
        from vllm.entrypoints.launchers.app import build_app as build_vllm_app
        from vllm.entrypoints.launchers.cli_args import make_arg_parser
        from vllm.usage.usage_lib import UsageContext
        from vllm.utils.argparse_utils import FlexibleArgumentParser
        from vllm.v1.engine.async_llm import AsyncLLM
        from vllm.v1.executor.abstract import Executor
        from vllm.v1.metrics.ray_wrappers import RayPrometheusStatLogger

        from serving.engine_stats import stat_logger_factory

        self.args = AppArgs.model_validate(args)
        context = serve.get_replica_context()
        rank = getattr(context.rank, "rank", context.rank) if context.rank is not None else None
        self.runtime = ReplicaRuntime(
            replica_id=context.replica_id.unique_id, rank=rank, engine=EngineState()
        )

        # Environment read by the CPU engine process this replica spawns.
        if self.args.cpu_kvcache_space_gib is not None:
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(self.args.cpu_kvcache_space_gib)
        core = None
        if self.args.pin_cores and rank is not None:
            # held for this replica's life: another replica on this host takes another core
            self._core = await claim_core_waiting(rank)
            core = os.environ["VLLM_CPU_OMP_THREADS_BIND"] = str(self._core.core)

        parser = make_arg_parser(FlexibleArgumentParser())
        cli = parser.parse_args(["--model", resolve_model(self.args.model)])
        cli.served_model_name = [self.args.served_model_name]
        for key, value in self.args.engine_kwargs.items():
            if not hasattr(cli, key):
                raise ValueError(f"unknown vLLM argument in engine_kwargs: {key!r}")
            if key == "dtype" and value == CPU_NATIVE:
                value = native_dtype(cpu_flags())
                logger.info("dtype %s: %s on this CPU", CPU_NATIVE, value)
            setattr(cli, key, value)
        engine_args = AsyncEngineArgs.from_cli_args(cli)
        vllm_config = engine_args.create_engine_config(UsageContext.OPENAI_API_SERVER)
        self.engine = AsyncLLM(
            vllm_config=vllm_config,
            executor_class=Executor.get_class(vllm_config),
            log_stats=True,
            usage_context=UsageContext.OPENAI_API_SERVER,
            log_requests=False,
            stat_loggers=[RayPrometheusStatLogger, stat_logger_factory(self.runtime.engine)],
        )
        supported = await self.engine.get_supported_tasks()
        self._vllm_app = build_vllm_app(cli, supported, self.engine.model_config)
        await init_app_state(self.engine, self._vllm_app.state, cli, supported)
        logger.info(
            "replica %s (rank %s) serving %s on core %s",
            self.runtime.replica_id, rank, self.args.served_model_name, core,
        )

    def __serve_build_asgi_app__(self):
        # vLLM's app has built its middleware stack already; wrap it instead.
        app = TelemetryMiddleware(self._vllm_app, self.runtime)
        capture = self.args.capture
        if capture is not None:
            from traffic.capture import (
                DEFAULT_REDACTIONS,
                CaptureMiddleware,
                CaptureWriter,
                Redactor,
            )

            self._capture_writer = CaptureWriter(
                os.path.expanduser(capture.directory),
                file_format=capture.file_format,  # type: ignore[arg-type]
                queue_size=capture.queue_size,
                redactor=Redactor(capture.redact_patterns or DEFAULT_REDACTIONS),
                writer_id=self.runtime.replica_id,
            ).start()
            app = CaptureMiddleware(
                app, writer=self._capture_writer, sample_rate=capture.sample_rate,
                tenant_header=capture.tenant_header,
            )
        return app

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Applied by Serve on deploy and on every ``user_config`` change, in place."""
        self.runtime.apply(UserConfig.parse(user_config))
        logger.info("replica %s config %s", self.runtime.replica_id, self.runtime.config_version)

    async def check_health(self) -> None:
        if self.engine.errored:
            raise RuntimeError(f"vLLM engine is dead: {self.engine.dead_error!r}")
        await self.engine.check_health()

    def __del__(self) -> None:
        writer = getattr(self, "_capture_writer", None)
        if writer is not None:
            writer.close()
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.shutdown()


def build_app(args: dict[str, Any]) -> Application:
    """Application builder named by ServeConfigV2's ``import_path``."""
    AppArgs.model_validate(args)  # fail the deploy early, in the controller, on bad args
    return LLMReplica.bind(args)
