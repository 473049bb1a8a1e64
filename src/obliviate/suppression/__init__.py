"""obliviate.suppression."""
