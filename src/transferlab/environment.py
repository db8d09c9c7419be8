"""`transferlab env`: the machine and the package versions that shape results, in a few lines.

Printed at the top of CI logs, so a run that fails on a new machine is diagnosable from the log.
"""

from __future__ import annotations

import platform

from transferlab.hardware import describe_cpu_line, resolve_dtype
from transferlab.versions import library_versions

# The packages whose releases change numbers, speed or the bundled suite's text.
KEY_PACKAGES = (
    "transferlab", "torch", "transformers", "peft", "accelerate", "safetensors", "tokenizers",
    "gguf", "numpy", "scipy", "pandas", "statsmodels", "lang2vec", "babel", "pycountry",
    "num2words", "country_converter", "lm_eval", "ray",
)  # fmt: skip


def describe_environment() -> str:
    """Return Python, the CPU (and GPU), the dtype ``auto`` resolves to and key package versions."""
    import torch

    lines = [f"Python {platform.python_version()} on {platform.platform()}", describe_cpu_line()]
    if torch.cuda.is_available():
        names = sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())})
        lines.append(f"CUDA: {', '.join(names)}; dtype auto: {resolve_dtype('auto', 'cuda')}")
    lines.append(f"dtype auto on cpu: {resolve_dtype('auto', 'cpu')}")
    versions = library_versions(KEY_PACKAGES)
    lines.append(" ".join(f"{name}=={versions[name]}" for name in KEY_PACKAGES))
    return "\n".join(lines)
