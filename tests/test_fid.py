"""rFID against pytorch-fid's own pipeline, with randomly initialised FID-Inception weights on both sides.

The random weights are written where pytorch-fid (through torch hub) looks for its checkpoint, so its
unmodified get_activations loads them, and tokbench resolves the same file through tokbench.weights.
BatchNorm statistics are calibrated on one noise batch so features do not vanish.
"""
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tokbench.data.items import Item
from tokbench.errors import MissingWeightsError
from tokbench.metrics.base import METRICS, Sample

import tokbench.metrics.fid  # noqa: F401  (registers rfid)

INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"


def random_fid_inception_state(seed=0):
    import pytorch_fid.inception as pfi

    torch.manual_seed(seed)
    net = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    for name, cls, args in [("Mixed_5b", pfi.FIDInceptionA, (192, 32)), ("Mixed_5c", pfi.FIDInceptionA, (256, 64)),
                            ("Mixed_5d", pfi.FIDInceptionA, (288, 64)), ("Mixed_6b", pfi.FIDInceptionC, (768, 128)),
                            ("Mixed_6c", pfi.FIDInceptionC, (768, 160)), ("Mixed_6d", pfi.FIDInceptionC, (768, 160)),
                            ("Mixed_6e", pfi.FIDInceptionC, (768, 192)), ("Mixed_7b", pfi.FIDInceptionE_1, (1280,)),
                            ("Mixed_7c", pfi.FIDInceptionE_2, (2048,))]:
        setattr(net, name, cls(*args))
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # running stats := statistics of the calibration batch
    net.train()
    with torch.no_grad():
        net(torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(seed)) * 2 - 1)
    return net.eval().state_dict()


def real_crops():
    """Originals: 64x64 crops of scikit-image photographs; reconstructions: JPEG q=20 of each crop."""
    from io import BytesIO

    from skimage import data

    crops = []
    for img in (data.astronaut(), data.coffee(), data.chelsea()):
        for y, x in ((20, 60), (200, 90)):
            crops.append(np.ascontiguousarray(img[y:y + 64, x:x + 64]))
    recons = []
    for c in crops:
        buf = BytesIO()
        Image.fromarray(c).save(buf, format="JPEG", quality=20)
        recons.append(np.asarray(Image.open(buf).convert("RGB")))
    return np.stack(crops), np.stack(recons)


@pytest.fixture(scope="module")
def fid_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("fid")
    with pytest.MonkeyPatch.context() as mp:
        for var, sub in (("HOME", "home"), ("XDG_CACHE_HOME", "xdg"), ("TOKBENCH_CACHE", "tb"), ("TORCH_HOME", "torch")):
            mp.setenv(var, str(root / sub))
        mp.setenv("TOKBENCH_OFFLINE", "1")
        mp.delenv("TOKBENCH_WEIGHTS", raising=False)
        ckpt = root / "torch" / "hub" / "checkpoints" / INCEPTION_FILE
        ckpt.parent.mkdir(parents=True)
        torch.save(random_fid_inception_state(), ckpt)
        originals, recons = real_crops()
        yield {"root": root, "ckpt": ckpt, "originals": originals, "recons": recons}


def exact_fid_few_samples(act1, act2):
    """FID of two feature sets with N << D, computed independently of any matrix square root.

    With S1 = A^T A and S2 = B^T B (A, B the centred features / sqrt(N - 1)), the non-zero eigenvalues of
    S1 S2 are the squared singular values of B A^T, so tr sqrt(S1 S2) is the nuclear norm of that small
    N2 x N1 matrix. scipy's sqrtm (pytorch-fid calculate_frechet_distance) cannot do this case: it raises
    "Imaginary component" for N < 2048, pytorch-fid's documented limitation.
    """
    a = (act1 - act1.mean(0)) / np.sqrt(len(act1) - 1)
    b = (act2 - act2.mean(0)) / np.sqrt(len(act2) - 1)
    diff = act1.mean(0) - act2.mean(0)
    nuclear = np.linalg.svd(b @ a.T, compute_uv=False).sum()
    return float(diff @ diff + np.sum(a * a) + np.sum(b * b) - 2 * nuclear)


def pytorch_fid_reference(images, tmp_dir):
    """pytorch-fid's own pipeline: PNG files -> get_activations -> np.mean / np.cov."""
    import pytorch_fid.inception as pfi
    from pytorch_fid.fid_score import get_activations

    files = []
    for i, im in enumerate(images):
        path = tmp_dir / f"{i:03d}.png"
        Image.fromarray(im).save(path)
        files.append(str(path))
    model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()  # loads from $TORCH_HOME cache
    # batch_size=1 as tokbench scores one item at a time: float32 convolutions are batch-size dependent
    act = get_activations(files, model, batch_size=1, dims=2048, device="cpu", num_workers=0)
    return act, act.mean(axis=0), np.cov(act, rowvar=False)


def samples(originals, recons):
    return [Sample(Item(id=f"crop{i}", modality="image", path=f"crop{i}.png"), o[None], r[None])
            for i, (o, r) in enumerate(zip(originals, recons))]


@pytest.fixture(scope="module")
def peer_and_ours(fid_env):
    root = fid_env["root"]
    (root / "a").mkdir()
    (root / "b").mkdir()
    act_o, mu_o, s_o = pytorch_fid_reference(fid_env["originals"], root / "a")
    act_r, mu_r, s_r = pytorch_fid_reference(fid_env["recons"], root / "b")
    peer_fid = exact_fid_few_samples(act_r, act_o)
    metric = METRICS.get("rfid")(None)  # resolves the checkpoint from $TORCH_HOME/hub/checkpoints
    smp = samples(fid_env["originals"], fid_env["recons"])
    ref_states = [metric.reference_state(s) for s in smp]
    rec_states = [metric.item_state(s) for s in smp]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = metric.compute(ref_states, rec_states)
    return {"result": result, "warnings": [str(w.message) for w in caught],"act_o": act_o, "act_r": act_r, "mu_o": mu_o, "s_o": s_o, "peer_fid": peer_fid, "metric": metric,
            "ref_states": ref_states, "rec_states": rec_states}


def test_features_equal_pytorch_fid_get_activations(peer_and_ours):
    ours_o = np.concatenate([s["features"] for s in peer_and_ours["ref_states"]])
    ours_r = np.concatenate([s["features"] for s in peer_and_ours["rec_states"]])
    assert ours_o.shape == (6, 2048)
    assert ours_o.std() > 0.1  # calibrated random network: features are not vanishing
    np.testing.assert_allclose(ours_o, peer_and_ours["act_o"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(ours_r, peer_and_ours["act_r"], rtol=0, atol=1e-5)


def test_streaming_statistics_equal_pytorch_fid_mean_and_cov(peer_and_ours):
    from tokbench.features.gaussian import GaussianStats

    stats = GaussianStats.from_states(peer_and_ours["ref_states"], 2048)
    np.testing.assert_allclose(stats.mean, peer_and_ours["mu_o"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(stats.cov(), peer_and_ours["s_o"], rtol=0, atol=1e-6)


def test_rfid_equals_fid_of_pytorch_fid_activations(peer_and_ours):
    out = peer_and_ours["result"]
    assert any("N=6" in w for w in peer_and_ours["warnings"])
    assert out["rFID-N"] == 6
    peer = peer_and_ours["peer_fid"]
    assert peer > 1.0
    assert abs(out["rFID"] - peer) <= 1e-5 * max(1.0, peer), (out["rFID"], peer)


def test_rfid_of_identical_sets_is_zero_and_shards_combine(peer_and_ours):
    metric, ref, rec = peer_and_ours["metric"], peer_and_ours["ref_states"], peer_and_ours["rec_states"]
    whole = peer_and_ours["result"]["rFID"]
    with pytest.warns(RuntimeWarning):
        same = metric.compute(ref, ref)["rFID"]
    assert abs(same) < 1e-6 * whole
    from tokbench.features.gaussian import GaussianStats

    # two shards' summed states combine to the single-pass statistics (hence the same rFID)
    shards = [GaussianStats.from_states(rec[:2], 2048).to_state(), GaussianStats.from_states(rec[2:], 2048).to_state()]
    combined, single = GaussianStats.from_states(shards, 2048), GaussianStats.from_states(rec, 2048)
    assert combined.n == single.n == 6
    np.testing.assert_allclose(combined.total, single.total, rtol=1e-12)
    np.testing.assert_allclose(combined.outer, single.outer, rtol=1e-12)


def test_describe_records_pipeline_and_weights(peer_and_ours, fid_env):
    d = peer_and_ours["metric"].describe()
    assert d["weights"]["file"] == INCEPTION_FILE
    assert peer_and_ours["metric"].extractor.weights_path == fid_env["ckpt"]  # resolved from the torch hub cache
    assert str(fid_env["root"]) not in str(d)  # machine paths stay out of what feeds cache keys
    assert len(d["weights"]["sha256"]) == 64
    assert d["weights"]["published_prefix_match"] is False  # random test weights are not the published file
    assert "align_corners=False" in d["resize"] and d["pytorch_fid"]


def test_missing_weights_is_one_line_naming_file_and_place(tmp_path, monkeypatch):
    for var in ("HOME", "XDG_CACHE_HOME", "TOKBENCH_CACHE", "TORCH_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.setenv("TOKBENCH_OFFLINE", "1")
    monkeypatch.delenv("TOKBENCH_WEIGHTS", raising=False)
    with pytest.raises(MissingWeightsError) as e:
        METRICS.get("rfid")(None)
    msg = str(e.value)
    assert "\n" not in msg
    assert INCEPTION_FILE in msg
    assert str(tmp_path / "tokbench_cache" / "weights" / INCEPTION_FILE) in msg


def test_unusable_weights_file_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKBENCH_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("TOKBENCH_OFFLINE", "1")
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / INCEPTION_FILE)
    with pytest.raises(MissingWeightsError) as e:
        METRICS.get("rfid")(None)
    assert "\n" not in str(e.value) and INCEPTION_FILE in str(e.value)


class CropSet:
    """A tiny in-memory Dataset of the originals (pixels through Item.loader)."""

    @staticmethod
    def make(originals):
        from tokbench.data.dataset import Dataset

        class Crops(Dataset):
            name = "crops"

            def load_items(self):
                return [Item(id=f"crop{i}", modality="image", path=Path(f"virtual/crop{i}.png"),
                             loader=lambda im=im: im) for i, im in enumerate(originals)]

        return Crops()


def test_build_stats_caches_reference_statistics(fid_env, peer_and_ours):
    from tokbench.stats import build_stats, load_stats, stats_dir

    ds = CropSet.make(fid_env["originals"][:3])
    first = build_stats(ds, resolution=None, split="test")
    assert not first.cached and first.path.parent == stats_dir() == fid_env["root"] / "tb" / "stats"
    assert first.key.n == 3 and first.key.weights_sha256 == peer_and_ours["metric"].weights_sha256
    direct = np.concatenate([s["features"] for s in peer_and_ours["ref_states"][:3]])
    np.testing.assert_allclose(first.stats.mean, direct.astype(np.float64).mean(0), rtol=1e-12)
    again = build_stats(ds, resolution=None, split="test")
    assert again.cached and again.path == first.path
    np.testing.assert_array_equal(again.stats.outer, first.stats.outer)
    assert load_stats(first.key) is not None
    # the cached statistics stand in for the originals' per-item states (what rFID's compute combines)
    from tokbench.features.gaussian import GaussianStats

    via_cache = GaussianStats.from_states([again.stats.to_state()], 2048)
    via_items = GaussianStats.from_states(peer_and_ours["ref_states"][:3], 2048)
    assert via_cache.n == via_items.n == 3
    np.testing.assert_allclose(via_cache.outer, via_items.outer, rtol=1e-12)
    np.testing.assert_allclose(via_cache.total, via_items.total, rtol=1e-12)


def test_stats_key_separates_preprocessing_and_resolution(fid_env):
    from tokbench.stats import build_stats

    ds = CropSet.make(fid_env["originals"][:1])
    a = build_stats(ds, resolution=None, split="test")
    b = build_stats(ds, resolution=32, split="test", preprocessing="center-crop")
    assert a.path != b.path and not b.cached
    assert b.key.preprocessing == "center-crop" and b.key.resolution == 32
    assert not np.allclose(a.stats.total, b.stats.total)


def test_stats_key_has_what_the_per_item_key_has(fid_env, peer_and_ours, monkeypatch):
    """Versions, device and TF32 state change features, so they key cached reference statistics too: the
    key carries the extractor's describe(), the very dict rFID's describe() (the per-item key) contains."""
    import json

    import pytorch_fid

    from tokbench.stats import build_stats, extractor_config

    ds = CropSet.make(fid_env["originals"][:1])
    a = build_stats(ds, resolution=None, split="test")
    config = json.loads(a.key.extractor_config)
    assert {"torch", "pytorch_fid", "device", "tf32", "dtype"} <= set(config)
    described = peer_and_ours["metric"].describe()
    assert config == {k: described[k] for k in config}
    monkeypatch.setattr(pytorch_fid, "__version__", "0.0.test")
    b = build_stats(ds, resolution=None, split="test")
    assert not b.cached and b.path != a.path
    np.testing.assert_array_equal(b.stats.outer, a.stats.outer)  # same numbers here, but not known to be
    before = extractor_config("inception", "cpu")
    monkeypatch.setattr(torch, "__version__", "0.0.test")
    assert extractor_config("inception", "cpu") != before
