"""Issue 18's faster paths change no number: a run with the separable SSIM and dlib in 2 worker processes
(scored beside the other metrics) writes the rows of a run with torchmetrics' SSIM and dlib in-process."""
import numpy as np
import pandas as pd
import torch

from tokbench.pipeline import RunConfig, run


def torchmetrics_ssim_per_frame(original, reconstruction):
    """The reference path: torchmetrics' whole-image SSIM in float64, one call per frame."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    to = lambda x: torch.from_numpy(np.array(x, dtype=np.float64)).permute(2, 0, 1)[None]  # noqa: E731
    return np.array([structural_similarity_index_measure(to(r), to(o), gaussian_kernel=True, sigma=1.5,
                                                         kernel_size=11, data_range=255.0).item()
                     for o, r in zip(original, reconstruction)])


def test_rows_equal_with_the_reference_paths(tmp_path, monkeypatch):
    from tokbench.evaluators import dlib_backend
    from tokbench.metrics import pixel

    # one item each: 22 faces (split between the 2 workers) and 34 words; the 164-word second text item and
    # a second 27-face photo only repeated the same paths
    cfg = dict(tokenizer="jpeg:quality=40", suite="text-face", resolutions=[256], limit=1,
               datasets=["face-composed", "text-real"], metrics=["text", "face", "psnr", "ssim"], quiet=True)
    monkeypatch.setattr(dlib_backend, "DEFAULT_NETWORK", "dlib")  # dlib's own network: its worker path
    monkeypatch.setattr(dlib_backend, "default_workers", lambda: 2)
    new = run(RunConfig(**cfg, out=str(tmp_path / "new"), cache_dir=str(tmp_path / "c-new"), name="r"))
    assert new.manifest["metrics"]["face"] and not new.manifest["unavailable"]
    monkeypatch.setattr(dlib_backend, "default_workers", lambda: 1)
    monkeypatch.setattr(pixel, "ssim_per_frame", torchmetrics_ssim_per_frame)
    old = run(RunConfig(**cfg, out=str(tmp_path / "old"), cache_dir=str(tmp_path / "c-old"), name="r"))
    a = pd.read_parquet(tmp_path / "new" / "r" / "rows.parquet")
    b = pd.read_parquet(tmp_path / "old" / "r" / "rows.parquet")
    assert len(a) > 10 and (a["level"] == "face").sum() >= 2 and (a["level"] == "word").sum() >= 2
    assert np.allclose(a["SSIM"].dropna(), b["SSIM"].dropna(), rtol=0, atol=1e-9)
    pd.testing.assert_frame_equal(a.drop(columns="SSIM"), b.drop(columns="SSIM"), check_exact=True)
