"""Committed pixel pins (datasets/built_pins.json): the sha256 of every built item's decoded pixels, so
``tokbench datasets verify`` proves a machine rebuilt exactly the data the published numbers came from
(a different Pillow/FreeType or source file shows up as a mismatch, not as silently different scores)."""
from __future__ import annotations

import json

from tokbench.data.embedded.sources import datasets_dir

PINS_FILE = "built_pins.json"


def read_pins() -> dict:
    p = datasets_dir() / PINS_FILE
    if not p.is_file():
        return {}
    return json.loads(p.read_text()).get("datasets", {})


def write_pins(datasets) -> None:
    """Maintainer tool: pin the current builds of ``datasets`` (EmbeddedDataset objects)."""
    pins = read_pins()
    for d in datasets:
        rec = d.record()
        pins[d.name] = {"recipe": rec["recipe"], "items": {it["id"]: it["pixels_sha256"] for it in rec["items"]}}
    out = {"about": "sha256 of the decoded pixels of every built item of the embedded datasets, per recipe hash;"
                    " checked by `tokbench datasets verify`. Refresh with"
                    " tokbench.data.embedded.pins.write_pins() after an intended change.",
           "datasets": dict(sorted(pins.items()))}
    (datasets_dir() / PINS_FILE).write_text(json.dumps(out, indent=1) + "\n")
