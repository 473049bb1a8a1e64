"""The README's Python API example: your model, your data, one call.

    .venv/bin/python examples/api_quickstart.py
"""

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

import obliviate
from obliviate.data import ArrayDataset
from obliviate.training import Recipe, train_classifier

# Your data: features, labels and a stable id per example.
X, y = load_digits(return_X_y=True)
X = (X / 16).astype("float32")
ids = np.array([f"img-{i}" for i in range(len(y))])
train = ArrayDataset(X[:1400], y[:1400], ids[:1400])
test = (X[1400:], y[1400:], ids[1400:])

# Your model, trained your way (here with obliviate's deterministic trainer).
torch.manual_seed(0)  # your usual initialisation; seeded so this output is reproducible
model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
recipe = Recipe(epochs=30, batch_size=64)
train_classifier(model, train, recipe, seed=0)

# Forget every "3", and audit the result against a model retrained without them.
result = obliviate.forget(model, train=train, forget="class:3", method="graddiff", test=test,
                          audit=True, recipe=recipe,
                          method_config={"epochs": 10, "lr": 1e-3, "forget_weight": 1.0})
print(result.to_markdown())
unlearned = result.model  # an nn.Module like yours; `model` itself is unchanged
