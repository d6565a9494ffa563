"""Video codec baselines through PyAV (its wheel bundles libx264, libx265, libvpx-vp9 and libsvtav1).

Each clip is encoded at a constant rate factor into an elementary stream (Annex B for H.264/HEVC, IVF for
VP9/AV1) and decoded back; the rate is the sum of the encoded packets (the bitstream without the IVF
headers).
"""
from __future__ import annotations

import io

import av
import numpy as np
import torch

from tokbench.tokenizers.base import Encoded, Tokenizer, TokenizerSpec
from tokbench.tokenizers.codecs import frames_float, frames_u8
from tokbench.tokenizers.registry import register_tokenizer

FPS = 25


class VideoCodec(Tokenizer):
    def __init__(self, spec, codec: str, options: dict, container: str):
        super().__init__(spec)
        self.codec, self.codec_options, self.container = codec, options, container

    def encode(self, x):
        clips = frames_u8(x)
        coded = [self._code(clip) for clip in clips]
        bits = torch.tensor([8.0 * nbytes for _, nbytes in coded], dtype=torch.float64)
        return Encoded(bits=bits, payload=([c for c, _ in coded], x, clips.shape[1]))

    def decode(self, encoded):
        containers, like, frames = encoded.payload
        out = np.stack([self._decode(c, frames) for c in containers])
        return frames_float(out, like)

    def _code(self, clip: np.ndarray) -> tuple[bytes, int]:
        buf = io.BytesIO()
        nbytes = 0
        with av.open(buf, mode="w", format=self.container) as out:
            stream = out.add_stream(self.codec, rate=FPS, options=dict(self.codec_options))
            stream.height, stream.width = clip.shape[1], clip.shape[2]
            stream.pix_fmt = "yuv420p"
            for frame in clip:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    nbytes += packet.size
                    out.mux(packet)
            for packet in stream.encode():
                nbytes += packet.size
                out.mux(packet)
        return buf.getvalue(), nbytes

    def _decode(self, data: bytes, frames: int) -> np.ndarray:
        with av.open(io.BytesIO(data), mode="r", format=self.container) as inp:
            decoded = [f.to_ndarray(format="rgb24") for f in inp.decode(video=0)]
        if len(decoded) != frames:
            raise RuntimeError(f"{self.codec}: decoded {len(decoded)} frames, encoded {frames}")
        return np.stack(decoded)


def _spec(name: str, codec: str, desc: str) -> TokenizerSpec:
    return TokenizerSpec(name=name, family="codec", kind="codec", modalities=frozenset({"image", "video"}),
                         spatial_multiple=2, label_options=("crf",),
                         description=f"{desc} via PyAV ({codec}), 4:2:0; option crf")


@register_tokenizer(_spec("h264", "libx264", "H.264/AVC"))
def h264(spec, *, crf: int = 23, preset: str = "medium"):
    return VideoCodec(spec, "libx264", {"crf": str(crf), "preset": preset}, "h264")


@register_tokenizer(_spec("hevc", "libx265", "H.265/HEVC"))
def hevc(spec, *, crf: int = 28, preset: str = "medium"):
    return VideoCodec(spec, "libx265", {"crf": str(crf), "preset": preset, "x265-params": "log-level=error"},
                      "hevc")


@register_tokenizer(_spec("vp9", "libvpx-vp9", "VP9"))
def vp9(spec, *, crf: int = 32, speed: int = 4):
    return VideoCodec(spec, "libvpx-vp9", {"crf": str(crf), "b": "0", "speed": str(speed)}, "ivf")


@register_tokenizer(_spec("av1", "libsvtav1", "AV1"))
def av1(spec, *, crf: int = 35, preset: int = 8):
    return VideoCodec(spec, "libsvtav1", {"crf": str(crf), "preset": str(preset), "svtav1-params": "log-level=1"}, "ivf")
