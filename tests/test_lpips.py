"""LPIPS against torchmetrics' own LearnedPerceptualImagePatchSimilarity on the same backbone weights.

Random torchvision AlexNet / VGG16 state dicts are written where torchvision's pretrained-weights loader
looks ($TORCH_HOME/hub/checkpoints), so torchmetrics' public metric loads them unmodified; tokbench
resolves the same file through tokbench.weights and loads it into a download-free LPIPS module.
"""
import numpy as np
import pytest
import torch
import torchvision
from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

from tokbench.data.items import Item
from tokbench.errors import BadInputError, MissingWeightsError
from tokbench.metrics.base import METRICS, Sample
from tokbench.metrics.lpips import to_lpips_range

import tokbench.metrics.lpips  # noqa: F401  (registers lpips, lpips-vgg)

FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}
BUILDERS = {"alex": torchvision.models.alexnet, "vgg": torchvision.models.vgg16}


@pytest.fixture
def env(tmp_path, monkeypatch):
    for var in ("HOME", "XDG_CACHE_HOME", "TOKBENCH_CACHE", "TORCH_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.setenv("TOKBENCH_OFFLINE", "1")
    monkeypatch.delenv("TOKBENCH_WEIGHTS", raising=False)
    return tmp_path / "torch_home" / "hub" / "checkpoints"


def put_random_backbone(hub_dir, net, seed=0):
    torch.manual_seed(seed)
    hub_dir.mkdir(parents=True, exist_ok=True)
    torch.save(BUILDERS[net](weights=None).state_dict(), hub_dir / FILES[net])


def image_pairs():
    """Originals: 48x56 crops of scikit-image photographs; reconstructions: noisy copies (uint8)."""
    from skimage import data

    rng = np.random.default_rng(0)
    orig = np.stack([data.astronaut()[100:148, 120:176], data.coffee()[50:98, 300:356], data.chelsea()[60:108, 80:136]])
    recon = np.clip(np.rint(orig + rng.normal(0, 12, orig.shape)), 0, 255).astype(np.uint8)
    return orig, recon


def sample(item_id, orig, recon, modality="image"):
    return Sample(Item(id=item_id, modality=modality, path=f"{item_id}.png"), orig, recon)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_equals_torchmetrics_lpips_on_the_same_backbone(env, net):
    put_random_backbone(env, net)
    orig, recon = image_pairs()
    peer = LearnedPerceptualImagePatchSimilarity(net_type=net, reduction="none", normalize=False)  # reads the hub cache
    expected = peer(to_lpips_range(orig), to_lpips_range(recon)).reshape(-1).numpy()
    metric = METRICS.get("lpips" if net == "alex" else "lpips-vgg")(None)
    col = metric.columns[0]
    ours = [metric.score(sample(f"im{i}", o[None], r[None]), None)[0][col] for i, (o, r) in enumerate(zip(orig, recon))]
    assert np.all(expected > 0)
    # one image per call against torchmetrics' batch of three: float32 convolutions pick other kernels per batch
    # size, so the two agree to float32 rounding accumulated over the backbone (measured up to 1.01e-6)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=0)
    # [-1, 1] with normalize=False is the same metric as [0, 1] with torchmetrics' normalize=True
    unit = peer.net(torch.from_numpy(orig).permute(0, 3, 1, 2) / 255.0, torch.from_numpy(recon).permute(0, 3, 1, 2) / 255.0,
                    normalize=True)
    np.testing.assert_allclose(ours, unit.reshape(-1).numpy(), rtol=1e-5)
    assert metric.describe()["backbone_weights"]["file"] == FILES[net]


def test_video_is_mean_over_frames_and_identical_is_zero(env):
    put_random_backbone(env, "alex")
    orig, recon = image_pairs()
    metric = METRICS.get("lpips")(None)
    per_frame = [metric.score(sample("f", o[None], r[None]), None)[0]["LPIPS"] for o, r in zip(orig, recon)]
    video = metric.score(sample("clip", orig, recon, "video"), None)
    assert video == [{"instance": 0, "LPIPS": pytest.approx(float(np.mean(per_frame)), rel=1e-6)}]
    assert metric.score(sample("same", orig, orig, "video"), None)[0]["LPIPS"] == pytest.approx(0.0, abs=1e-7)


def test_bad_inputs_name_the_item(env):
    put_random_backbone(env, "alex")
    metric = METRICS.get("lpips")(None)
    tiny = np.zeros((1, 20, 20, 3), np.uint8)
    with pytest.raises(BadInputError, match="tinyitem.*at least 31"):
        metric.score(sample("tinyitem", tiny, tiny), None)
    with pytest.raises(BadInputError, match="skew.*differ"):
        metric.score(sample("skew", np.zeros((1, 40, 40, 3), np.uint8), np.zeros((1, 40, 48, 3), np.uint8)), None)


@pytest.mark.parametrize("name,net", [("lpips", "alex"), ("lpips-vgg", "vgg")])
def test_missing_backbone_is_one_line(env, tmp_path, name, net):
    with pytest.raises(MissingWeightsError) as e:
        METRICS.get(name)(None)
    msg = str(e.value)
    assert "\n" not in msg and FILES[net] in msg
    assert str(tmp_path / "tokbench_cache" / "weights" / FILES[net]) in msg


def test_wrong_backbone_file_is_refused(env):
    env.mkdir(parents=True)
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), env / FILES["alex"])  # not AlexNet
    with pytest.raises(MissingWeightsError, match="torchvision alex backbone"):
        METRICS.get("lpips")(None)
