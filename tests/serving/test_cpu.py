"""The embedded engine's dtype follows what the CPU computes natively."""

from __future__ import annotations

from serving.cpu import cpu_flags, native_dtype


def test_bfloat16_only_where_the_cpu_has_bfloat16_instructions():
    assert native_dtype(frozenset({"avx2", "fma", "avx512f", "avx512_bf16"})) == "bfloat16"
    assert native_dtype(frozenset({"avx2", "amx_bf16", "amx_tile"})) == "bfloat16"
    # AVX-512 without BF16, or AVX2 only: bfloat16 would be emulated
    assert native_dtype(frozenset({"avx2", "fma", "avx512f"})) == "float32"
    assert native_dtype(frozenset()) == "float32"


def test_flags_are_read_from_the_first_processor(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\n\n"
                    "processor\t: 1\nflags\t\t: fpu\n")
    assert cpu_flags(info) == frozenset({"fpu", "avx2", "avx512_bf16"})
    assert cpu_flags(tmp_path / "missing") == frozenset()
