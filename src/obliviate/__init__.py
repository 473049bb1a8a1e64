"""obliviate: machine unlearning end to end.

The one-call entry point is :func:`forget`; benchmarks run through
:func:`obliviate.bench.run_bench` or the ``obliviate`` command. Submodules are
imported on first use, so ``import obliviate`` (and every CLI call or worker
process) stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["ForgetResult", "forget", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("forget", "ForgetResult"):
        from obliviate import api  # imports obliviate.removal, which registers every method

        return getattr(api, name)
    raise AttributeError(f"module 'obliviate' has no attribute {name!r}")
