"""The serving stack: a Ray Serve app wrapping vLLM, its router, telemetry and control.

Modules that import ``ray`` or ``vllm`` (``app``, ``router``, ``engine_stats``,
``model``) run only in the serving environment; the rest (``user_config``,
``faults``, ``routing``, ``telemetry``, ``middleware``, ``stack``) are plain Python the
orchestrator and the unit tests import.
"""
