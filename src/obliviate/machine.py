"""What machine a run happened on, and how busy it was: recorded next to every timing.

Timings on a shared CPU mean little without the load beside them, so benchmarks and
bench results record :func:`machine_info` and :func:`load_average`. torch is imported
only by :func:`machine_info`, so numpy-only benchmarks can use the rest without it.
"""

from __future__ import annotations

import os
import platform
from typing import Any

from obliviate.errors import ConfigError

__all__ = ["cpu_model", "machine_info", "load_average", "format_load", "library_versions", "loaded"]


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info() -> dict[str, Any]:
    """CPU model, core count, torch threads, the torch, Python and platform versions, and the load now."""
    import torch

    load = load_average()
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "load_average": None if load is None else [round(v, 2) for v in load], "loaded": loaded()}


def load_average() -> tuple[float, float, float] | None:
    """The 1, 5 and 15-minute load averages, or None where the platform has none (Windows)."""
    try:
        one, five, fifteen = os.getloadavg()
    except (AttributeError, OSError):
        return None
    return float(one), float(five), float(fifteen)


def format_load(load: tuple[float, ...] | None, *, sep: str = " / ", digits: int = 2) -> str:
    """Load averages as text (``"1.49 / 0.57 / 0.22"``), ``"n/a"`` for None."""
    return "n/a" if load is None else sep.join(f"{v:.{digits}f}" for v in load)


def loaded(cores: int | None = None) -> bool:
    """True when the 1-minute load exceeds ``cores`` (default: the machine's core count).

    False where the load average is unavailable: unknown is not reported as busy.
    """
    if cores is not None and (isinstance(cores, bool) or not isinstance(cores, int) or cores < 1):
        raise ConfigError(f"The 'cores' parameter of loaded must be an int >= 1 or None; got {cores!r} instead.")
    load = load_average()
    if load is None:
        return False
    limit = (os.cpu_count() or 1) if cores is None else cores
    return load[0] > limit


#: the libraries whose versions change a run's numbers or its files
LIBRARIES = ("obliviate", "torch", "numpy", "scipy", "scikit-learn", "transformers", "tokenizers", "peft",
             "safetensors", "pydantic", "matplotlib")


def library_versions() -> dict[str, str]:
    """Installed versions of :data:`LIBRARIES` (those installed), recorded with every run."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out
