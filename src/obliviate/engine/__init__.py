"""obliviate.engine."""
