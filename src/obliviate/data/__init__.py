"""Datasets with stable ids and subjects, built-in loaders, and forget-set specs."""

from obliviate.data.builtin import DATASETS, load_dataset
from obliviate.data.dataset import ArrayDataset, DataBundle
from obliviate.data.forget import FORGET_SPECS, ForgetSplit, make_split, select, split_forget
from obliviate.data.request import ForgetRequest
from obliviate.data.images import ImageFolderConfig, load_image_folder
from obliviate.data.tabular import TabularConfig, TabularEncoder, TabularSchema, load_tabular

__all__ = [
    "ArrayDataset",
    "DataBundle",
    "DATASETS",
    "FORGET_SPECS",
    "ForgetRequest",
    "ForgetSplit",
    "ImageFolderConfig",
    "TabularConfig",
    "TabularEncoder",
    "TabularSchema",
    "load_dataset",
    "load_image_folder",
    "load_tabular",
    "make_split",
    "select",
    "split_forget",
]
