"""obliviate.policy."""
