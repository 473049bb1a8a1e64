"""Fit probe: one MLP 784-512-256-10 on all 60,000 Fashion-MNIST images; train/test accuracy per (epochs:lr:precision).

Usage: PYTHONPATH=src python benchmarks/probe_fit_epochs.py 20:2e-3:bfloat16 (Adam, batch 128, cosine)
"""
import torch, time, numpy as np, sys
from torch import nn
from obliviate.data.idx import read_idx
from obliviate.engine.replicas import ReplicaRecipe, train_replicas
from obliviate.machine import format_load, load_average
torch.set_num_threads(1)
d="/work/shared/data/fashion-mnist/"
x=read_idx(d+"train-images-idx3-ubyte.gz").astype(np.float32)/255.; y=read_idx(d+"train-labels-idx1-ubyte.gz").astype(np.int64)
xt=read_idx(d+"t10k-images-idx3-ubyte.gz").astype(np.float32)/255.; yt=read_idx(d+"t10k-labels-idx1-ubyte.gz").astype(np.int64)
f=lambda: nn.Sequential(nn.Flatten(),nn.Linear(784,512),nn.ReLU(),nn.Linear(512,256),nn.ReLU(),nn.Linear(256,10))
for spec in sys.argv[1:]:
    E,lr,prec=spec.split(":"); E=int(E); lr=float(lr)
    rec=ReplicaRecipe(epochs=E,batch_size=128,lr=lr,optimizer="adam",schedule="cosine",precision=prec)
    t0=time.perf_counter(); s=train_replicas(f,x,y,None,[1],recipe=rec); dt=time.perf_counter()-t0
    tr=(s.predict_logits(x).argmax(-1)==y).mean(); te=(s.predict_logits(xt).argmax(-1)==yt).mean()
    print(f"E={E} lr={lr} {prec}: train {tr:.4f} test {te:.4f}  {dt:.0f}s  GF/s {E*60000*2.4e-3*1.0/dt:.0f}  load {format_load(load_average())}",flush=True)
