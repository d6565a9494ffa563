import numpy as np
import pytest
import torch
from PIL import Image

from tokbench import harness
from tokbench.errors import TokenizerOutputError
from tokbench.tokenizers import Encoded, Tokenizer, TokenizerSpec, create_tokenizer

SHAPES = [(300, 200), (200, 300), (257, 131), (1023, 77), (64, 64), (1500, 1100)]


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (1, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("size", [256, 512, 1024])
def test_identity_round_trip_is_exact(size):
    tok = create_tokenizer("identity")
    images = [_image(h, w, i) for i, (h, w) in enumerate(SHAPES)]
    recs = harness.reconstruct_images(tok, images, size, [f"img{i}" for i in range(len(images))])
    for im, rec in zip(images, recs):
        assert np.array_equal(rec.pixels, im)


@pytest.mark.parametrize("size", [256, 512, 1024])
def test_resize_baseline_is_tokbench_smart_padding(size):
    tok = create_tokenizer("resize")
    for h, w in SHAPES:
        im = _image(h, w)
        rec = harness.reconstruct_images(tok, [im], size, ["x"])[0]
        r = min(size / w, size / h)
        fw, fh = min(size, int(np.ceil(w * r))), min(size, int(np.ceil(h * r)))
        small = Image.fromarray(im[0]).resize((fw, fh), Image.Resampling.LANCZOS)
        expect = np.asarray(small.resize((w, h), Image.Resampling.LANCZOS)) if (fw, fh) != (w, h) else im[0]
        assert np.array_equal(rec.pixels[0], expect)
        assert rec.geometry.canvas_h == rec.geometry.canvas_w == size


def test_pad_crop_geometry_exact_when_no_resize():
    spec = TokenizerSpec(name="g", family="t", kind="baseline", spatial_multiple=64, square_only=True)
    for h, w in [(100, 37), (64, 64), (65, 200)]:
        im = _image(h, w)
        g = harness.plan_image(h, w, None, spec)
        canvas = harness.to_canvas(im, g)
        assert canvas.shape[1] % 64 == 0 and canvas.shape[1] == canvas.shape[2]
        assert canvas[0].sum() == im.astype(np.int64).sum()  # padding is black
        assert np.array_equal(harness.from_canvas(canvas, g), im)


CAUSAL = TokenizerSpec(name="c", family="t", kind="discrete", modalities=frozenset({"image", "video"}),
                       temporal_factor=4, causal_first_frame=True, default_clip_frames=17)


@pytest.mark.parametrize("t,expected", [
    (1, [(0, 1, 1)]),
    (16, [(0, 16, 17)]),
    (17, [(0, 17, 17)]),
    (33, [(0, 17, 17), (17, 33, 17)]),
])
def test_frame_rule_chunking(t, expected):
    clips = harness.plan_clips(t, CAUSAL)
    assert clips == expected
    assert all(CAUSAL.valid_frames(length) for _, _, length in clips)
    assert sum(stop - start for start, stop, _ in clips) == t


def test_frame_rule_noncausal_and_whole_video():
    spec = TokenizerSpec(name="n", family="t", kind="continuous", temporal_factor=4)
    assert harness.plan_clips(10, spec) == [(0, 10, 12)]
    assert harness.valid_length(1, spec) == 4
    with pytest.raises(ValueError):
        harness.plan_clips(10, CAUSAL, clip_frames=16)


class FrameCounter(Tokenizer):
    """Returns its input and records the clip lengths it was given."""

    def __init__(self, spec):
        super().__init__(spec)
        self.seen = []

    def encode(self, x):
        self.seen.append(tuple(x.shape))
        return Encoded(bits=torch.ones(x.shape[0], dtype=torch.float64), payload=x)

    def decode(self, enc):
        return enc.payload


def test_video_clips_reach_tokenizer_with_valid_lengths_and_restore():
    tok = FrameCounter(CAUSAL)
    video = np.random.default_rng(1).integers(0, 256, (33, 48, 64, 3), dtype=np.uint8)
    rec = harness.reconstruct_video(tok, video, None, "clip")
    assert [s[2] for s in tok.seen] == [17, 17]
    assert np.array_equal(rec.pixels, video)
    assert rec.bits == 2.0


def test_value_range_mapping():
    spec = TokenizerSpec(name="r", family="t", kind="discrete", input_range=(-0.5, 0.5))
    batch = np.array([0, 255, 128], dtype=np.uint8).reshape(1, 1, 1, 1, 3)
    x = harness.to_input(batch, spec, "cpu", torch.float32)
    assert torch.allclose(x.flatten(), torch.tensor([-0.5, 0.5, 128 / 255 - 0.5]))
    back = harness.to_uint8(x, spec, tuple(x.shape), "r", "item")
    assert np.array_equal(back, batch)
    over = harness.to_uint8(x * 3, spec, tuple(x.shape), "r", "item")  # out of range: clamped
    assert over.flatten().tolist() == [0, 255, 129]


@pytest.mark.parametrize("bad,match", [
    (lambda y: y * float("nan"), "NaN"),
    (lambda y: y[..., :-1], "shape"),
    (lambda y: (y * 255).to(torch.uint8), "dtype"),
])
def test_bad_tokenizer_output_names_tokenizer_and_item(bad, match):
    class Broken(FrameCounter):
        def decode(self, enc):
            return bad(enc.payload)

    tok = Broken(TokenizerSpec(name="broken", family="t", kind="baseline"))
    with pytest.raises(TokenizerOutputError, match=match) as e:
        harness.reconstruct_images(tok, [_image(20, 30)], 256, ["set/item-7"])
    assert "broken" in str(e.value) and "set/item-7" in str(e.value)
