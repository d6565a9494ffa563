"""Dataset interface and registry.

A dataset is a named, content-hashed list of items. The hash covers pixels' source files and annotations,
so caches and reports can prove which data produced a number.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from abc import ABC, abstractmethod
from functools import cached_property
from typing import Callable

from tokbench.data.items import Item
from tokbench.registry import Registry


class Dataset(ABC):
    name: str = ""
    modality: str = "image"
    license: str = ""
    description: str = ""

    @abstractmethod
    def load_items(self) -> list[Item]:
        """Build the item list (annotations parsed, pixels not decoded)."""

    @cached_property
    def items(self) -> list[Item]:
        items = self.load_items()
        ids = [it.id for it in items]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
            raise ValueError(f"dataset {self.name}: duplicate item ids {dup}")
        return items

    @cached_property
    def item_hashes(self) -> dict[str, str]:
        """Per-item sha256 over the item's file bytes and annotations (cache keys use these)."""
        file_hashes: dict[str, str] = {}
        out = {}
        for item in self.items:
            key = str(item.path)
            if key not in file_hashes:
                file_hashes[key] = sha256_file(item.path) if item.path.is_file() else "virtual:" + key
            record = {
                "id": item.id,
                "file": file_hashes[key],
                "words": [dataclasses.astuple(w) for w in item.words],
                "faces": [dataclasses.astuple(f) for f in item.faces],
            }
            out[item.id] = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()
        return out

    @cached_property
    def content_hash(self) -> str:
        """sha256 over every item's hash, in id order: names exactly which data produced a report."""
        h = hashlib.sha256()
        for item_id in sorted(self.item_hashes):
            h.update(f"{item_id}:{self.item_hashes[item_id]}\n".encode())
        return h.hexdigest()

    def describe(self) -> dict:
        return {
            "name": self.name,
            "modality": self.modality,
            "items": len(self.items),
            "words": sum(len(it.words) for it in self.items),
            "faces": sum(len(it.faces) for it in self.items),
            "content_sha256": self.content_hash,
            "license": self.license,
        }


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


DATASETS: Registry[Callable[[], Dataset]] = Registry("dataset")


def register_dataset(name: str, *aliases: str):
    """Register a zero-argument factory returning a Dataset."""
    return DATASETS.register(name, *aliases)


def get_dataset(name: str) -> Dataset:
    return DATASETS.get(name)()
