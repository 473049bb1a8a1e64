"""Deterministic training, safetensors checkpoints and the trained-model cache."""

from obliviate.training.cache import ModelCache, TrainedModel, train_cached
from obliviate.training.checkpoint import load_checkpoint, save_checkpoint
from obliviate.training.recipe import Recipe
from obliviate.training.trainer import TrainResult, predict_logits, train_classifier

__all__ = [
    "ModelCache",
    "Recipe",
    "TrainResult",
    "TrainedModel",
    "load_checkpoint",
    "predict_logits",
    "save_checkpoint",
    "train_cached",
    "train_classifier",
]
