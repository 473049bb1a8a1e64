"""Datasets with stable ids and subjects, built-in loaders, and forget-set specs."""

from obliviate.data.builtin import DATASETS, load_dataset
from obliviate.data.dataset import ArrayDataset, DataBundle
from obliviate.data.forget import FORGET_SPECS, ForgetSplit, make_split, split_forget

__all__ = [
    "ArrayDataset",
    "DataBundle",
    "DATASETS",
    "FORGET_SPECS",
    "ForgetSplit",
    "load_dataset",
    "make_split",
    "split_forget",
]
