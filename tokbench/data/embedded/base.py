"""The embedded-dataset base class: a deterministic recipe that builds lossless files into the cache once,
and items read back from the build record (built automatically on first use)."""
from __future__ import annotations

import hashlib
import json
import threading
from abc import abstractmethod
from pathlib import Path

import numpy as np

from tokbench.data.dataset import Dataset, sha256_file
from tokbench.data.embedded import store
from tokbench.data.embedded.sources import datasets_dir, source
from tokbench.data.items import Face, Item, Word
from tokbench.errors import BadInputError

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(name: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(name, threading.Lock())


class BuiltItem:
    """What a recipe hands to the store for one item: pixels (H, W, 3) or (T, H, W, 3) plus annotations."""

    def __init__(self, id: str, pixels: np.ndarray, words=(), faces=(), source: str = "", license: str = "",
                 fps: float | None = None, provenance: str = ""):
        self.id, self.pixels, self.words, self.faces = id, pixels, list(words), list(faces)
        self.source, self.license, self.fps, self.provenance = source, license, fps, provenance


class EmbeddedDataset(Dataset):
    """Subclasses set ``name``, ``modality``, ``recipe_version``, ``annotation_files`` (under datasets/),
    ``source_keys`` (manifest keys read), ``suites``, and implement ``generate``."""

    recipe_version: str = "1"
    annotation_files: tuple[str, ...] = ()
    source_keys: tuple[str, ...] = ()
    suites: tuple[str, ...] = ()

    @abstractmethod
    def generate(self) -> list[BuiltItem]:
        """Produce every item deterministically (pixels and annotations)."""

    # --- where and what -------------------------------------------------------------------------------
    def recipe(self) -> str:
        """Hash of everything the build depends on besides library versions (those are caught by the pins)."""
        h = hashlib.sha256(f"{self.name}|{self.recipe_version}".encode())
        for rel in self.annotation_files:
            h.update(rel.encode())
            h.update((datasets_dir() / rel).read_bytes())
        for key in self.source_keys:
            h.update(f"{key}={source(key).sha256}".encode())
        return h.hexdigest()

    def folder(self) -> Path:
        return store.datasets_cache() / f"{self.name}-{self.recipe()[:12]}"

    def is_built(self) -> bool:
        return store.read_record(self.folder()) is not None

    # --- build ------------------------------------------------------------------------------------------
    def build(self, force: bool = False) -> Path:
        """Write the dataset's files and build record (skipped when already built, unless ``force``)."""
        final = self.folder()
        with _lock_for(self.name), store.build_lock(final):
            if not force and store.read_record(final) is not None:
                return final
            store.log(f"building embedded dataset {self.name} into {final}")
            for key in self.source_keys:
                source(key).check()
            built = self.generate()
            with store.atomic_build_dir(final) as tmp:
                records = [self._write(tmp, b) for b in built]
                rec = {"dataset": self.name, "recipe": self.recipe(), "recipe_version": self.recipe_version,
                       "modality": self.modality, "items": records}
                (tmp / "build.json").write_text(json.dumps(rec, indent=1) + "\n")
            for k in ("items", "content_hash"):
                self.__dict__.pop(k, None)
            return final

    def _write(self, folder: Path, b: BuiltItem) -> dict:
        video = b.pixels.ndim == 4
        fname = f"{b.id}.mkv" if video else f"{b.id}.png"
        path = folder / fname
        if video:
            store.write_ffv1(path, b.pixels, b.fps or 25.0)
        else:
            store.write_png(path, b.pixels)
        h, w = b.pixels.shape[-3:-1]
        return {"id": b.id, "file": fname, "modality": "video" if video else "image", "width": int(w),
                "height": int(h), "frames": int(b.pixels.shape[0]) if video else 1, "fps": b.fps,
                "file_sha256": sha256_file(path), "pixels_sha256": store.pixels_sha256(b.pixels),
                "source": b.source, "license": b.license, "provenance": b.provenance,
                "words": b.words, "faces": b.faces}

    # --- read back --------------------------------------------------------------------------------------
    def record(self, build: bool = True) -> dict:
        folder = self.folder()
        rec = store.read_record(folder)
        if rec is None:
            if not build:
                raise BadInputError(f"embedded dataset {self.name} is not built; run `tokbench datasets build`")
            self.build()
            rec = store.read_record(folder)
        return rec

    def load_items(self) -> list[Item]:
        rec = self.record()
        folder = self.folder()
        items = []
        for it in rec["items"]:
            words = tuple(Word(text=w["text"], box=tuple(w["box"]), ratio=w["ratio"],
                               quad=tuple(tuple(p) for p in w["quad"]) if w.get("quad") else None,
                               frame=w.get("frame", 0)) for w in it["words"])
            faces = tuple(Face(kps=tuple(tuple(p) for p in f["kps"]), box=tuple(f["box"]), ratio=f["ratio"],
                               person=f.get("person"), frame=f.get("frame", 0)) for f in it["faces"])
            items.append(Item(id=it["id"], modality=it["modality"], path=folder / it["file"], words=words,
                              faces=faces, source=it["source"], license=it["license"], fps=it.get("fps")))
        return items
