"""One epoch of 16 audit replicas (MLP 784-512-256-10, Adam, batch 128) on all 60,000 images: achieved GFLOP/s."""
import time, numpy as np, torch
from obliviate.data.idx import read_idx
from obliviate.engine.replicas import ReplicaRecipe, train_replicas, train_one_at_a_time
from obliviate.engine.replicas.groups import ArchitectureFactory
from obliviate.machine import format_load, load_average
torch.set_num_threads(1)
d = "/work/shared/data/fashion-mnist/"
x = read_idx(d + "train-images-idx3-ubyte.gz").astype(np.float32)[:, None] / 255.0
y = read_idx(d + "train-labels-idx1-ubyte.gz").astype(np.int64)
fac = ArchitectureFactory("mlp", {}, (1, 28, 28), 10)
F = 2.41e6  # training FLOP per example-pass
print("load before", format_load(load_average()), flush=True)
for prec in ("bfloat16", "float32"):
    rec = ReplicaRecipe(epochs=1, batch_size=128, lr=1e-3, optimizer="adam", schedule="cosine", precision=prec)
    t0 = time.perf_counter(); train_replicas(fac, x, y, None, list(range(16)), recipe=rec); dt = time.perf_counter() - t0
    print(f"batched {prec} R=16 1 epoch 60k: {dt:.1f} s, {16 * 60000 * F / dt / 1e9:.0f} GFLOP/s, load {format_load(load_average())}", flush=True)
rec = ReplicaRecipe(epochs=1, batch_size=128, lr=1e-3, optimizer="adam", schedule="cosine")
t0 = time.perf_counter(); train_one_at_a_time(fac, x, y, None, [0], recipe=rec); dt = time.perf_counter() - t0
print(f"one-at-a-time float32 1 model 1 epoch 60k: {dt:.1f} s, {60000 * F / dt / 1e9:.0f} GFLOP/s, load {format_load(load_average())}", flush=True)
