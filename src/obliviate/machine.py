"""What machine a run ran on, and how busy it was: recorded with every timing."""

from __future__ import annotations

import os
import platform
from typing import Any


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (None where the platform has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):  # pragma: no cover - not on every platform
        return None


def loaded(cores: int | None = None) -> bool:
    """True when the 1-minute load exceeds the core count: timings taken now are inflated."""
    load = load_average()
    return bool(load and load[0] > (cores or os.cpu_count() or 1))


def machine_info() -> dict[str, Any]:
    """CPU model, cores, torch threads and versions, and the load when asked."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "load_average": load_average(), "loaded": loaded()}
