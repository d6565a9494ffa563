"""What ``tokbench datasets list | build | verify | show`` do, as plain functions over the embedded datasets."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import pandas as pd

from tokbench import bins as B
from tokbench.data.embedded import EMBEDDED, EMBEDDED_SUITES
from tokbench.errors import BadInputError

IMAGE_BINS = {"word": B.TEXT_BINS, "face": B.FACE_BINS_NEW}
VIDEO_BINS = {"word": B.VIDEO_TEXT_BINS, "face": B.VIDEO_FACE_BINS}


def _datasets(names: Optional[Iterable[str]]):
    names = list(EMBEDDED) if names is None else list(names)
    out = []
    for n in names:
        if n in EMBEDDED_SUITES:
            out += list(EMBEDDED_SUITES[n])
        elif n in EMBEDDED:
            out.append(n)
        else:
            raise BadInputError(f"unknown embedded dataset or suite {n!r}; known: "
                                f"{', '.join(sorted(EMBEDDED_SUITES) + sorted(EMBEDDED))}")
    seen, objs = set(), []
    for n in out:
        if n not in seen:
            seen.add(n)
            objs.append(EMBEDDED[n]())
    return objs


def _count_rows(name: str, kind: str, modality: str, items: list) -> list[dict]:
    table = VIDEO_BINS if modality == "video" else IMAGE_BINS
    rows = []
    for level, bins_by_res in table.items():
        inst = [x for it in items for x in (it.words if level == "word" else it.faces)]
        if not inst:
            continue
        for res, bounds in bins_by_res.items():
            assigned = [B.assign_bin(x.ratio, bounds) for x in inst]
            row = {"name": name, "kind": kind, "modality": modality, "items": len(items), "level": level,
                   "resolution": res}
            for b in B.BIN_NAMES:
                row[b] = sum(a == b for a in assigned)
            row["scored"] = sum(a is not None for a in assigned)
            row["below"] = sum(a is None for a in assigned)
            row["total"] = len(inst)
            row["people"] = (len({x.person for x, a in zip(inst, assigned) if a is not None and x.person})
                             if level == "face" else np.nan)
            rows.append(row)
    return rows


COUNT_COLUMNS = ["items", "S", "M", "L", "scored", "below", "total", "people"]


def list_datasets(names: Optional[Iterable[str]] = None) -> pd.DataFrame:
    """One row per (dataset or suite, level, resolution): instances per TokBench bin (S/M/L), scored,
    below the first bin, total, and distinct people among scored faces. Lists only what is built (listing
    never builds); an unbuilt dataset gets one row saying so."""
    objs = _datasets(names)
    rows, by_name = [], {}
    for d in objs:
        if not d.is_built():
            rows.append({"name": d.name, "kind": "dataset", "modality": d.modality,
                         "built": "no: tokbench datasets build " + d.name})
            continue
        by_name[d.name] = d
        rows += [{**r, "built": "yes"} for r in _count_rows(d.name, "dataset", d.modality, d.items)]
    for suite, members in EMBEDDED_SUITES.items():  # a suite's totals whenever all its datasets are listed
        if not all(m in by_name for m in members):
            continue
        modality = by_name[members[0]].modality
        rows += [{**r, "built": "yes"} for r in
                 _count_rows(suite, "suite", modality, [it for m in members for it in by_name[m].items])]
    cols = ["name", "kind", "modality", "built", "level", "resolution", *COUNT_COLUMNS]
    table = pd.DataFrame(rows, columns=cols)
    for c in ["resolution", *COUNT_COLUMNS]:  # counts are integers; a blank is "not applicable / not built"
        table[c] = table[c].astype("Int64")
    return table


def build(names: Optional[Iterable[str]] = None, force: bool = False, workers: Optional[int] = None) -> list[Path]:
    """Build (or reuse) the embedded datasets, two at a time by default (encoding and resizing release the
    GIL); returns their folders."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    objs = _datasets(names)
    workers = workers or min(2, os.cpu_count() or 1)
    if workers <= 1 or len(objs) <= 1:
        return [d.build(force=force) for d in objs]
    # longest first so the two lanes finish together
    order = sorted(range(len(objs)), key=lambda i: -BUILD_WEIGHT.get(objs[i].name, 1))
    with ThreadPoolExecutor(workers) as pool:
        futures = {i: pool.submit(objs[i].build, force) for i in order}
        return [futures[i].result() for i in range(len(objs))]


def build_in_child(names: Iterable[str]) -> None:
    """Build the embedded datasets among ``names`` that are not built yet in a child process. A build decodes
    and resizes large source photos; done inside a run, the heap it leaves behind (glibc keeps freed arenas)
    stays in the run's process and raises its peak RSS. A failed build is left to the run, which builds
    in-process and stops with its one-line error."""
    import subprocess
    import sys

    missing = [n for n in names if n in EMBEDDED and not EMBEDDED[n]().is_built()]
    if missing:
        subprocess.run([sys.executable, "-m", "tokbench", "datasets", "build", *missing],
                       stdout=subprocess.DEVNULL, check=False)


BUILD_WEIGHT = {"video-clips": 20, "text-rendered": 19, "face-composed": 8}  # seconds on 2 cores, for ordering


def verify(names: Optional[Iterable[str]] = None, build_missing: bool = True) -> list[str]:
    """Re-hash everything: pinned sources, built files (bytes and decoded pixels) against the build record
    and the committed pixel pins, and re-derive every ratio. Returns problems; empty means verified."""
    from tokbench.data.dataset import sha256_file
    from tokbench.data.embedded import store
    from tokbench.data.embedded.geometry import face_ratio, word_ratio
    from tokbench.data.embedded.pins import read_pins
    from tokbench.data.embedded.sources import check_all
    from tokbench.data.items import read_image, read_video

    problems = check_all()
    if problems:
        return problems  # nothing can be built or compared without the sources
    pins = read_pins()
    for d in _datasets(names):
        if not d.is_built():
            if not build_missing:
                problems.append(f"{d.name}: not built (run `tokbench datasets build`)")
                continue
            d.build()
        rec = d.record(build=False)
        folder = d.folder()
        pin = pins.get(d.name)
        if pin is None:
            problems.append(f"{d.name}: no pixel pins in datasets/built_pins.json")
        elif pin["recipe"] != rec["recipe"]:
            problems.append(f"{d.name}: pins are for recipe {pin['recipe'][:12]}, this build is {rec['recipe'][:12]}"
                            " (annotations or sources changed; re-pin after checking the data)")
            pin = None
        if pin is not None and set(pin["items"]) != {it["id"] for it in rec["items"]}:
            problems.append(f"{d.name}: built items differ from the pinned items")
        for it in rec["items"]:
            path = folder / it["file"]
            label = f"{d.name}/{it['id']}"
            if sha256_file(path) != it["file_sha256"]:
                problems.append(f"{label}: {path} changed since it was built (file sha256 mismatch)")
            pixels = read_video(path) if it["modality"] == "video" else read_image(path)
            got = store.pixels_sha256(pixels)
            if got != it["pixels_sha256"]:
                problems.append(f"{label}: decoded pixels differ from the build record")
            if pin is not None and pin["items"].get(it["id"]) not in (None, got):
                problems.append(f"{label}: pixels differ from datasets/built_pins.json (sha256 {got[:12]}…)")
            w, h = it["width"], it["height"]
            for x in it["words"]:
                if not np.isclose(x["ratio"], word_ratio(x["box"], x["text"], w, h)):
                    problems.append(f"{label}: word {x['text']!r} ratio does not match its box")
                if not (0 <= x["box"][0] < x["box"][2] <= w and 0 <= x["box"][1] < x["box"][3] <= h):
                    problems.append(f"{label}: word {x['text']!r} box {x['box']} outside the {w}x{h} image")
            for f in it["faces"]:
                if not np.isclose(f["ratio"], face_ratio(f["kps"], w, h)):
                    problems.append(f"{label}: face of {f['person']} ratio does not match its landmarks")
                k = np.asarray(f["kps"])
                if (k < 0).any() or (k[:, 0] >= w).any() or (k[:, 1] >= h).any():
                    problems.append(f"{label}: face of {f['person']} has landmarks outside the image")
    return problems


def show(suite_or_dataset: str, out_png: str | Path, max_items: int = 24) -> Path:
    """Contact sheet of a suite or dataset (items spread evenly across its datasets), annotations drawn."""
    from tokbench.data.dataset import get_dataset
    from tokbench.data.embedded.sheet import contact_sheet, pick

    if suite_or_dataset in EMBEDDED_SUITES or suite_or_dataset in EMBEDDED:
        datasets = _datasets([suite_or_dataset])
    else:
        datasets = [get_dataset(suite_or_dataset)]
    per = max(1, max_items // len(datasets))
    entries = [(d.name, it) for d in datasets for it in pick(d.items, per)]
    return contact_sheet(entries[:max_items], out_png)
