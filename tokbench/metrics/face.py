"""Face identity fidelity (TokBench F-Sim) plus the identity-kept rate.

Per face: embed the original and the reconstruction at the same ground-truth landmarks (no detector) with
the protocol's face backend. F-Sim is the cosine of the two embeddings (no clipping, as TokBench); F-L2 the
L2 distance in the backend's convention (raw dlib descriptors, unit-normalised ArcFace embeddings);
ID-kept is 1.0 when the backend's standard same-person rule still holds (dlib: L2 < 0.6), else 0.0. The
original's embeddings are computed once in ``reference`` and reused for every tokenizer.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from tokbench.errors import BadInputError
from tokbench.evaluators.crops import as_frames
from tokbench.evaluators.face import FaceEmbedder, cosine, create_face_backend
from tokbench.metrics.base import InstanceMetric, Sample, register_metric


def embed_faces(backend: FaceEmbedder, pixels: np.ndarray, item) -> np.ndarray:
    """(N, D) embeddings of ``item.faces`` in item order, one backend call per frame."""
    frames = as_frames(pixels)
    out = np.zeros((len(item.faces), backend.dim), dtype=np.float64)
    by_frame: dict[int, list[int]] = defaultdict(list)
    for i, face in enumerate(item.faces):
        if not 0 <= face.frame < frames.shape[0]:
            raise BadInputError(f"{item.id}: face {i} frame {face.frame} outside the {frames.shape[0]} "
                                "decoded frame(s)")
        by_frame[face.frame].append(i)
    for frame, idx in sorted(by_frame.items()):
        out[idx] = backend.embed(frames[frame], [item.faces[i] for i in idx], f"{item.id} frame {frame}")
    return out


class FaceIdentity(InstanceMetric):
    name = "face"
    level = "face"
    columns = ("F-Sim", "F-L2", "ID-kept")
    higher_is_better = (True, False, True)
    version = "1"

    def __init__(self, backend: FaceEmbedder):
        self.backend = backend

    @property
    def runs_in_workers(self) -> bool:
        """The backend computes in worker processes: the pipeline scores this metric beside the others."""
        return getattr(self.backend, "workers", 1) > 1

    def describe(self) -> dict:
        return {**super().describe(), "face_backend": self.backend.describe(),
                "F-Sim": "cosine of original vs reconstruction embeddings at the same ground-truth landmarks",
                "F-L2": "L2 distance of the embeddings"
                        + (" after unit normalisation" if self.backend.rule.normalized else " (raw)"),
                "ID-kept": f"1.0 when {self.backend.rule.describe()['rule']} ({self.backend.rule.source}), else 0.0"}

    def reference(self, sample: Sample) -> dict:
        emb = embed_faces(self.backend, sample.original, sample.item)
        return {"embeddings": emb.tolist()}

    def score(self, sample: Sample, reference) -> list[dict]:
        item = sample.item
        if not item.faces:
            return []
        if sample.reconstruction.shape != sample.original.shape:
            raise BadInputError(f"{item.id}: reconstruction {sample.reconstruction.shape} does not match the "
                                f"original {sample.original.shape}; landmarks need the original resolution")
        ref = np.asarray((reference or {}).get("embeddings", []), dtype=np.float64)
        if ref.shape != (len(item.faces), self.backend.dim):
            raise BadInputError(f"{item.id}: cached face reference has shape {ref.shape}, expected "
                                f"{(len(item.faces), self.backend.dim)} (stale cache?)")
        rec = embed_faces(self.backend, sample.reconstruction, item)
        rule = self.backend.rule
        rows = []
        for i, face in enumerate(item.faces):
            rows.append({"instance": i, "frame": int(face.frame), "ratio": float(face.ratio),
                         "person": face.person or "", "F-Sim": cosine(ref[i], rec[i]), "F-L2": rule.l2(ref[i], rec[i]),
                         "ID-kept": 1.0 if rule.same(ref[i], rec[i]) else 0.0})
        return rows


@register_metric("face", "f-sim")
def _face(protocol, device="cpu"):
    return FaceIdentity(create_face_backend(protocol.face_backend, device=device))
