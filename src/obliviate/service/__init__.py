"""obliviate.service."""
