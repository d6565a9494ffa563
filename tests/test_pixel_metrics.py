import numpy as np
import pytest
import torch
from skimage import data
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from tokbench.data.items import Item
from tokbench.metrics.base import Sample
from tokbench.metrics.pixel import PSNR, PSNR_CAP_DB, SSIM


def _pair():
    rng = np.random.default_rng(0)
    a = data.astronaut()[::2, ::2][None]
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    return a, b


def _sample(a, b):
    return Sample(Item("x", "image", path=None), a, b)  # type: ignore[arg-type]


def test_psnr_closed_form_and_torchmetrics():
    a = np.full((1, 8, 8, 3), 100, np.uint8)
    b = a + 1
    assert PSNR().score(_sample(a, b), None)[0]["PSNR"] == pytest.approx(20 * np.log10(255), abs=1e-5)
    a, b = _pair()
    ref = PeakSignalNoiseRatio(data_range=255.0)(torch.tensor(b, dtype=torch.float64), torch.tensor(a, dtype=torch.float64))
    assert PSNR().score(_sample(a, b), None)[0]["PSNR"] == pytest.approx(ref.item(), abs=1e-5)
    assert PSNR().score(_sample(a, a), None)[0]["PSNR"] == PSNR_CAP_DB


def test_ssim_equals_torchmetrics_module():
    a, b = _pair()
    m = StructuralSimilarityIndexMeasure(gaussian_kernel=True, sigma=1.5, kernel_size=11, data_range=255.0)
    to = lambda x: torch.tensor(x, dtype=torch.float64).permute(0, 3, 1, 2)  # noqa: E731
    ref = m(to(b), to(a)).item()
    ours = SSIM().score(_sample(a, b), None)[0]["SSIM"]
    assert ours == pytest.approx(ref, abs=1e-5)
    assert 0.3 < ours < 0.9
    assert SSIM().score(_sample(a, a), None)[0]["SSIM"] == pytest.approx(1.0, abs=1e-6)


def test_video_psnr_is_mean_over_frames():
    a, b = _pair()
    video_a = np.concatenate([a, a]); video_b = np.concatenate([b, a])
    expect = (PSNR().score(_sample(a, b), None)[0]["PSNR"] + PSNR_CAP_DB) / 2
    assert PSNR().score(_sample(video_a, video_b), None)[0]["PSNR"] == pytest.approx(expect)


@pytest.mark.parametrize("shape", [(301, 257), (64, 500), (245, 100), (23, 40)])
def test_strips_equal_one_whole_image_call(monkeypatch, shape):
    """Strips (forced small here, incl. a last sliver thinner than the halo) give the whole-image values:
    PSNR the closed form, SSIM torchmetrics' whole-image call in float64."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    from tokbench.metrics import pixel

    rng = np.random.default_rng(1)
    h, w = shape
    a = data.astronaut()[:h, :w][None]
    b = np.clip(a.astype(int) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)
    to = lambda x, dt: torch.tensor(x, dtype=dt).permute(0, 3, 1, 2)  # noqa: E731
    psnr_ref = peak_signal_noise_ratio(to(b, torch.float64), to(a, torch.float64), data_range=255.0).item()
    ssim_ref = structural_similarity_index_measure(to(b, torch.float64), to(a, torch.float64), gaussian_kernel=True,
                                                   sigma=1.5, kernel_size=11, data_range=255.0).item()
    monkeypatch.setattr(pixel, "STRIP_PIXELS", 40 * w)  # 40-row strips; 245 = 6 * 40 + 5: a sliver, merged
    assert len(pixel._strips(h, w, pixel.SSIM_HALO)) == {301: 8, 64: 2, 245: 6, 23: 1}[h]
    closed_form = 10 * np.log10(255.0**2 / np.mean((a.astype(float) - b) ** 2))
    # torchmetrics takes log(10) (and, whole-image, log(255)) in float32: ~5e-8 relative
    assert pixel.psnr_per_frame(a, b)[0] == pytest.approx(closed_form, rel=1e-7)
    assert pixel.psnr_per_frame(a, b)[0] == pytest.approx(psnr_ref, rel=1e-7)
    assert pixel.ssim_per_frame(a, b)[0] == pytest.approx(ssim_ref, abs=1e-9)


def _real_pair(shape, quality=30):
    """A real photo resized (LANCZOS) to ``shape`` and its JPEG reconstruction: flat areas, edges, texture."""
    import io

    from PIL import Image

    h, w = shape
    image = np.asarray(Image.fromarray(data.coffee()).resize((w, h), Image.LANCZOS))
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    rec = np.asarray(Image.open(buf).convert("RGB"))
    pad = np.zeros((h, w // 8, 3), np.uint8)  # a black band, as smart padding leaves: float32 SSIM drifts there
    return np.concatenate([image, pad], 1)[None], np.concatenate([rec, pad], 1)[None]


@pytest.mark.parametrize("shape", [(256, 256), (512, 384), (1024, 160), (37, 53), (301, 201), (777, 96)])
def test_separable_ssim_equals_torchmetrics_float64(monkeypatch, shape):
    """The separable float64 SSIM equals torchmetrics' whole-image call in float64 to 1e-6 (measured ~1e-14)
    on a real photo at 256, 512 and 1024 rows and odd sizes, through strips of 100 rows (torchmetrics'
    float64 convolution costs ~20 s per megapixel, hence the narrow tall images)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    from tokbench.metrics import pixel

    a, b = _real_pair(shape)
    monkeypatch.setattr(pixel, "STRIP_PIXELS", 100 * a.shape[2])
    to = lambda x: torch.tensor(x, dtype=torch.float64).permute(0, 3, 1, 2)  # noqa: E731
    ref = structural_similarity_index_measure(to(b), to(a), gaussian_kernel=True, sigma=1.5, kernel_size=11,
                                              data_range=255.0).item()
    ours = pixel.ssim_per_frame(a, b)[0]
    assert abs(ours - ref) <= 1e-6
    assert 0.5 < ours < 0.999
    full = pixel.ssim_map(a[0], b[0])  # the map itself, pixel by pixel, for a whole image
    assert full.shape == (3, a.shape[1], a.shape[2])
    assert full.mean() == pytest.approx(ref, abs=1e-6)


def test_psnr_equals_torchmetrics_float64_state_exactly():
    """The exact integer error sum gives torchmetrics' float64-state PeakSignalNoiseRatio bit for bit
    (per frame and pooled over a clip), including the capped identical case."""
    from tokbench.metrics import pixel

    rng = np.random.default_rng(3)
    for t, h, w, amp in [(1, 301, 200, 30), (3, 64, 97, 2), (2, 23, 5, 255), (1, 16, 16, 0)]:
        a = rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8)
        b = np.clip(a.astype(int) + rng.integers(-amp, amp + 1, a.shape), 0, 255).astype(np.uint8)
        to = lambda x: torch.tensor(x, dtype=torch.float64).permute(0, 3, 1, 2)  # noqa: E731
        pooled = PeakSignalNoiseRatio(data_range=255.0)
        pooled.set_dtype(torch.float64)
        per = []
        for k in range(t):
            m = PeakSignalNoiseRatio(data_range=255.0)
            m.set_dtype(torch.float64)
            m.update(to(b[k:k + 1]), to(a[k:k + 1]))
            pooled.update(to(b[k:k + 1]), to(a[k:k + 1]))
            per.append(min(float(m.compute()), PSNR_CAP_DB))
        assert pixel.psnr_per_frame(a, b).tolist() == per
        assert pixel.psnr_pooled(a, b) == min(float(pooled.compute()), PSNR_CAP_DB)
