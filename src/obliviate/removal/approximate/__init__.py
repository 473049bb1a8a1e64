"""Approximate removal methods, one module each; importing the package registers them all."""

import sys as _sys

from obliviate.removal._discover import import_submodules as _import_submodules

_import_submodules(_sys.modules[__name__])
