"""Datasets: items with ground-truth annotations, and the suites that group them."""
from tokbench.data.items import Face, Item, Word, read_image, read_video
from tokbench.data.dataset import Dataset, DATASETS, register_dataset, get_dataset

__all__ = ["Face", "Item", "Word", "read_image", "read_video", "Dataset", "DATASETS",
           "register_dataset", "get_dataset"]
