"""What this machine's CPU can do, read from /proc/cpuinfo independently of transferlab."""

from pathlib import Path


def cpu_flags() -> set[str]:
    """Return the CPU feature flags (empty where /proc/cpuinfo is absent)."""
    path = Path("/proc/cpuinfo")
    flags: set[str] = set()
    if path.exists():
        for line in path.read_text().splitlines():
            if line.lower().startswith(("flags", "features")):
                flags.update(line.split(":", 1)[1].split())
    return flags


def expected_auto_dtype() -> str:
    """Return the dtype `auto` must pick on this CPU: bf16 only with bf16 instructions."""
    native = {"avx512_bf16", "amx_bf16", "bf16"} & cpu_flags()
    return "bfloat16" if native else "float32"
