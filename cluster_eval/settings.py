"""The one settings object: paths, ports and environment names.

Everything that can differ between a laptop, CI and a production cluster is read
here once (environment variables prefixed ``CLUSTER_EVAL_``) and passed down; no
module deeper in the tree reads ``os.environ`` for its own configuration.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLUSTER_EVAL_", extra="ignore")

    home: Path = Field(
        default=Path.home() / ".cache" / "cluster-eval",
        description="Data directory outside git: prepared model, warehouse, run outputs.",
    )
    serve_env: Path = Field(
        default=PROJECT_ROOT / ".venv-serve",
        description="Virtualenv holding ray + vllm; used only to start a local Ray head.",
    )
    ray_address: str = Field(default="127.0.0.1:6379", description="GCS address of the Ray head.")
    dashboard_url: str = Field(default="http://127.0.0.1:8265")
    serve_url: str = Field(default="http://127.0.0.1:8000", description="Serve HTTP proxy.")
    metrics_port: int = Field(default=8090, description="Ray's Prometheus export port.")
    ray_num_cpus: int = Field(
        default=8,
        description="Logical CPUs for the local head (replicas, proxy, controller).",
    )
    ray_head_session_nice: int = Field(
        default=19, ge=0, le=19,
        description=(
            "Autogroup nice of the local head's session: its engines yield the CPU to "
            "the replay measuring them (serving/cpu_share.py); 0 leaves it as it is."
        ),
    )

    warehouse_memory_limit: str = Field(
        default="2.5GB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description=(
            "DuckDB's memory limit for the warehouse (checks and loads spill to disk "
            "beyond it): a night of 10 M spans peaks at 13 GiB without it, 3.0 GiB with "
            "2.5GB (benchmarks/checks_speed.py)."
        ),
    )

    @property
    def model_dir(self) -> Path:
        return self.home / "models" / "SmolLM2-135M-Instruct-bf16"

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def metrics_url(self) -> str:
        host = self.dashboard_url.split("://", 1)[-1].rsplit(":", 1)[0]
        return f"http://{host}:{self.metrics_port}/metrics"


def get_settings() -> Settings:
    return Settings()
