"""obliviate: machine unlearning end to end.

The one-call entry point is :func:`forget`; benchmarks run through
:func:`obliviate.bench.run_bench` or the ``obliviate`` command.
"""

__version__ = "0.1.0"

from obliviate.api import ForgetResult, forget  # noqa: E402
import obliviate.removal  # noqa: E402,F401  (registers the built-in methods)

__all__ = ["ForgetResult", "forget", "__version__"]
