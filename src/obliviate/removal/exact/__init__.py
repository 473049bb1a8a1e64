"""Exact removal: the retrain oracle (and, later, SISA and summation forms)."""

from obliviate.removal.exact import retrain  # noqa: F401  (registers)
