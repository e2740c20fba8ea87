"""What the host CPU computes natively: the embedded engine's dtype follows it.

vLLM's CPU backend runs bfloat16 fast only where the CPU has bfloat16 instructions
(AVX-512 BF16 or AMX); elsewhere every bfloat16 matmul is emulated. On an AVX2-only
host the embedded SmolLM2 served 0.74 req/s in bfloat16 and 2.67 req/s in float32
(32 concurrent 64-token requests, 2 replicas, docs/serving.md), so the shipped
config asks for ``dtype: cpu-native`` and each replica resolves it here.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CPU_NATIVE", "cpu_flags", "native_dtype"]

CPU_NATIVE = "cpu-native"
_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The first processor's flags (empty where /proc/cpuinfo is not readable)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_dtype(flags: frozenset[str]) -> str:
    """``bfloat16`` where the CPU computes it natively, else ``float32``."""
    return "bfloat16" if flags & _BF16_FLAGS else "float32"
