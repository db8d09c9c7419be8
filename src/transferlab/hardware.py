"""What this machine's processor can run fast, and the dtype that follows from it.

bf16 halves memory traffic and, where the processor has bf16 instructions (CPUs with
AVX-512-bf16 or AMX, ARM cores with BF16, CUDA GPUs since Ampere), roughly doubles throughput.
Without them a CPU emulates bf16 matmuls and runs them many times slower than fp32 (measured
~90x on an AVX2-only EPYC), so the dtype is chosen at run time, never assumed.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
from pathlib import Path

log = logging.getLogger(__name__)

DTYPES = ("float32", "bfloat16")
AUTO = "auto"
# /proc/cpuinfo flags of native bf16 arithmetic (x86: AVX-512-bf16, AMX; aarch64: BF16).
_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
_REPORTED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "bf16")


@functools.cache
def _cpuinfo() -> tuple[str, frozenset[str]]:
    """Return the CPU's model name and its feature flags (empty where /proc/cpuinfo is absent)."""
    name, flags = platform.processor() or platform.machine(), set()
    path = Path("/proc/cpuinfo")
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key in ("model name", "hardware") and name in ("", platform.machine()):
                name = value.strip()
            elif key in ("flags", "features"):
                flags.update(value.split())
    return name, frozenset(flags)


def cpu_has_native_bf16() -> bool:
    """Return True when the CPU executes bf16 arithmetic in hardware."""
    return any(flag in _cpuinfo()[1] for flag in _BF16_FLAGS)


def cpu_description() -> dict[str, object]:
    """Return the CPU's model name, torch's vector capability and the flags that matter here."""
    import torch

    name, flags = _cpuinfo()
    return {
        "model": name,
        "machine": platform.machine(),
        "cores": _cores(),
        "torch_capability": torch.backends.cpu.get_cpu_capability(),
        "flags": [flag for flag in _REPORTED_FLAGS if flag in flags],
        "native_bf16": cpu_has_native_bf16(),
    }


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def describe_cpu_line() -> str:
    """Return one line naming the CPU and its relevant instruction sets, for logs and benchmarks."""
    cpu = cpu_description()
    flags = ", ".join(str(f) for f in cpu["flags"]) or "no AVX2"
    return (
        f"CPU: {cpu['model']} ({cpu['machine']}, {cpu['cores']} cores; torch {cpu['torch_capability']};"
        f" {flags}; native bf16: {'yes' if cpu['native_bf16'] else 'no'})"
    )


def _cuda_bf16(device: str) -> bool:
    import torch

    if not torch.cuda.is_available():
        # A Ray driver without a GPU plans for workers that have one: every GPU in current use
        # for training (Ampere and later) computes bf16 natively.
        return True
    index = int(device.split(":")[1]) if ":" in device else torch.cuda.current_device()
    with torch.cuda.device(index):
        return torch.cuda.is_bf16_supported()


def native_bf16(device: str) -> bool:
    """Return True when ``device`` ('cpu', 'cuda', 'cuda:N', 'mps') computes bf16 natively."""
    if device.startswith("cuda"):
        return _cuda_bf16(device)
    if device == "mps":
        return False  # bf16 on Apple GPUs depends on the OS release; fp32 is the safe default
    return cpu_has_native_bf16()


def resolve_dtype(dtype: str, device: str = "cpu") -> str:
    """Return the dtype to run: ``auto`` becomes bf16 where ``device`` runs it natively, else fp32.

    An explicit ``bfloat16`` on a CPU without bf16 instructions is kept, with a warning.
    """
    if dtype == AUTO:
        return "bfloat16" if native_bf16(device) else "float32"
    if dtype == "bfloat16" and device == "cpu" and not cpu_has_native_bf16():
        _warn_emulated_bf16()
    return dtype


@functools.cache
def _warn_emulated_bf16() -> None:
    # Once per process: a study resolves its dtypes in several places.
    log.warning(
        "bfloat16 on this CPU is emulated (no AVX-512-bf16 or AMX instructions) and many times "
        "slower than float32; use dtype auto or float32"
    )
