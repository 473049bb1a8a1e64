"""Exact removal: the retrain oracle, summation forms, certified removal, retrieval, SISA.

Importing the package imports each module, so methods registered there are available.
"""

import sys as _sys

from obliviate.removal._discover import import_submodules as _import_submodules

_import_submodules(_sys.modules[__name__])
