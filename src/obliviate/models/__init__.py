"""Model architectures, the model registry, and user-model loading."""

from obliviate.models.zoo import MLP, MODELS, ModelSpec, SmallCNN, build_model, resolve_factory

__all__ = ["MLP", "MODELS", "ModelSpec", "SmallCNN", "build_model", "resolve_factory"]
