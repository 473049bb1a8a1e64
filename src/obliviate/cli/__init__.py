"""obliviate.cli."""
