import io

import numpy as np
import pytest
from PIL import Image
from skimage import data

from tokbench import harness
from tokbench.tokenizers import create_tokenizer


def test_jpeg_bits_per_pixel_is_file_size():
    im = data.astronaut()[None]
    tok = create_tokenizer("jpeg:quality=60")
    rec = harness.reconstruct_images(tok, [im], 256, ["astronaut"])[0]
    canvas = harness.to_canvas(im, rec.geometry)[0]
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, format="JPEG", quality=60, subsampling=2, optimize=False)
    assert rec.bits == len(buf.getvalue()) * 8
    assert rec.bpp == pytest.approx(len(buf.getvalue()) * 8 / (256 * 256), rel=1e-12)
    decoded = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    assert np.array_equal(rec.pixels, harness.from_canvas(decoded[None], rec.geometry))
    assert 0.2 < rec.bpp < 3


def test_jpeg_quality_orders_rate_and_error():
    im = data.coffee()[None]
    out = {}
    for q in (10, 50, 90):
        rec = harness.reconstruct_images(create_tokenizer(f"jpeg:quality={q}"), [im], 256, ["coffee"])[0]
        out[q] = (rec.bpp, np.abs(rec.pixels.astype(int) - im).mean())
    assert out[10][0] < out[50][0] < out[90][0]
    assert out[10][1] > out[50][1] > out[90][1]


@pytest.mark.parametrize("name", ["h264", "hevc", "vp9", "av1"])
def test_video_codec_bits_equal_bitstream_bytes(name):
    rng = np.random.default_rng(0)
    base = data.astronaut()[::4, ::4]  # 128 x 128
    video = np.stack([np.roll(base, 2 * t, axis=1) for t in range(5)])
    video = np.clip(video.astype(int) + rng.integers(-3, 4, video.shape), 0, 255).astype(np.uint8)
    tok = create_tokenizer(name)
    rec = harness.reconstruct_video(tok, video, None, "clip")
    # decode the same bitstream independently and count its packets
    enc = tok.encode(harness.to_input(video[None], tok.spec, "cpu", tok.dtype))
    stream = enc.payload[0][0]
    # Annex B streams are the bitstream itself; IVF adds a 32-byte file header and 12 bytes per frame
    nbytes = len(stream) - (32 + 12 * 5 if tok.container == "ivf" else 0)
    assert rec.bits == enc.bits.item() == nbytes * 8
    assert rec.bpp == pytest.approx(nbytes * 8 / (5 * 128 * 128))
    psnr = 10 * np.log10(255**2 / np.mean((rec.pixels.astype(float) - video) ** 2))
    assert psnr > 25
