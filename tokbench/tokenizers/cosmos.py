"""NVIDIA Cosmos tokenizers (continuous CI / CV, discrete DI / DV) from their TorchScript ``encoder.jit`` and
``decoder.jit``, with the upstream windowing.

Who does what (the upstream ``CausalVideoTokenizer.forward`` / ``pad_video_batch``, reproduced here):

* The harness cuts videos into clips of ``default_clip_frames`` = 17 that satisfy ``T = 1 + k * temporal_factor``
  (repeating the last frame of a short final clip) on a canvas whose sides are multiples of 16.
* This adapter cuts a clip into independent windows of ``temporal_window`` frames (17, as upstream; TokBench's
  ``cosmos_rec.py`` used 49: pass ``temporal_window=49`` and ``--clip-frames 49`` to match it), and pads each window as
  upstream does: frames to ``1 + 8k`` by repeating the first and last frames (split front / back; the upstream
  docstring says "reflection", its code uses ``np.pad(mode="edge")``), H and W to multiples of 16 with black
  (-1), centred. Outputs are cropped back. Images (CI / DI) are coded frame by frame, padded to 16 the same way.
* Discrete variants return FSQ indices (levels 8,8,8,5,5,5 = 64,000 codes) and their rate is
  ``tokens x log2(64000)``; continuous ones return 16-channel latents counted at 16 bits per element. Both count
  the padded windows, which is what the tokenizer really emits.

TorchScript is not pickle, but it is a program: the archive's code runs when the model is called and the
deserializer has had memory-safety bugs. The project rule for checkpoints that are not plain weights applies:
loading needs ``allow_unsafe=True`` (``--allow-unsafe-checkpoint``); use NVIDIA's files from the hub repos named here.
The continuous models are autoencoders (no posterior to sample), so there is no ``sample`` option. Upstream runs
in bf16 (``--dtype bf16``); CPU float32 is the reference here. Autocast does not reach into TorchScript graphs,
so half precision is applied by casting the modules, as upstream does.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from tokbench.checkpoints import torchscript_trusted
from tokbench.errors import BadInputError, MissingWeightsError, UnsafeCheckpointError
from tokbench.tokenizers.base import Encoded, TokenizerSpec, continuous_bits, discrete_bits
from tokbench.tokenizers.registry import register_tokenizer
from tokbench.tokenizers.torch_module import ModuleTokenizer
from tokbench.weights import WeightFile, resolve

TEMPORAL_WINDOW = 17  # upstream default of CausalVideoTokenizer.forward
TEMPORAL_ALIGN = 8  # upstream _TEMPORAL_ALIGN: windows are padded to 1 + 8k frames
SPATIAL_ALIGN = 16  # upstream _SPATIAL_ALIGN
FSQ_LEVELS = (8, 8, 8, 5, 5, 5)
CODEBOOK_SIZE = math.prod(FSQ_LEVELS)  # 64,000
LATENT_BITS = 16
LICENSE = "code Apache-2.0; weights NVIDIA Open Model License (doc)"


def split(n: int) -> tuple[int, int]:
    """Upstream split of ``n`` padding frames or pixels: (before, after) = (n >> 1, rest)."""
    return n // 2, n - n // 2


def frames_to_pad(t: int) -> int:
    return (TEMPORAL_ALIGN - (t - 1) % TEMPORAL_ALIGN) % TEMPORAL_ALIGN


def sides_to_pad(s: int) -> int:
    return (SPATIAL_ALIGN - s % SPATIAL_ALIGN) % SPATIAL_ALIGN


def pad_window(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int, int, int]]:
    """Pad a (B, C, T, H, W) window as upstream ``pad_video_batch`` (or an image batch (B, C, H, W) as
    ``pad_image_batch``); returns the padded tensor and the crop (t0, y0, x0, t1, y1, x1)."""
    video = x.ndim == 5
    t = x.shape[2] if video else 1
    h, w = x.shape[-2:]
    top, bottom = split(sides_to_pad(h))
    left, right = split(sides_to_pad(w))
    if top or bottom or left or right:
        x = F.pad(x, (left, right, top, bottom), value=-1.0)  # uint8 zero = black = -1
    front, back = split(frames_to_pad(t)) if video else (0, 0)
    if front or back:
        x = torch.cat([x[:, :, :1].expand(-1, -1, front, -1, -1), x, x[:, :, -1:].expand(-1, -1, back, -1, -1)], 2)
    return x, (front, top, left, front + t, top + h, left + w)


def crop(y: torch.Tensor, region: tuple[int, ...]) -> torch.Tensor:
    t0, y0, x0, t1, y1, x1 = region
    if y.ndim == 5:
        return y[:, :, t0:t1, y0:y1, x0:x1]
    return y[..., y0:y1, x0:x1]


def first_output(out):
    """Upstream ``encode``: a tensor, or a tuple whose last element is dropped; the first is what decodes."""
    if isinstance(out, torch.Tensor):
        return out
    return out[0]


class CosmosTokenizer(ModuleTokenizer):
    uses_autocast = False  # autocast does not reach TorchScript graphs; the modules are cast instead

    def __init__(self, spec: TokenizerSpec, encoder, decoder, *, temporal_window: int = TEMPORAL_WINDOW,
                 checkpoint_path=None):
        super().__init__(spec, checkpoint_path=checkpoint_path)
        self.encoder, self.decoder = encoder, decoder
        self.modules = [encoder, decoder]
        self.discrete = spec.kind == "discrete"
        self.video = "video" in spec.modalities
        if temporal_window < 1:
            raise BadInputError(f"tokenizer {spec.name}: temporal_window must be >= 1, not {temporal_window}")
        self.temporal_window = int(temporal_window)

    def windows(self, t: int) -> list[tuple[int, int]]:
        w = self.temporal_window
        return [(i * w, min((i + 1) * w, t)) for i in range((t - 1) // w + 1)]

    def encode(self, x: torch.Tensor) -> Encoded:
        b, c, t, h, w = x.shape
        x = self.prepare(x)
        with torch.inference_mode(), self.precision():
            if not self.video:
                frames, region = pad_window(x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w))
                code = first_output(self.encoder(frames))
                code = code.reshape(b, t, *code.shape[1:])  # (B, T, h, w) indices or (B, T, C, h, w) latents
                if not self.discrete:
                    code = code.permute(0, 2, 1, 3, 4)
                pieces = [(t, region)]
            else:
                codes, pieces = [], []
                for start, stop in self.windows(t):
                    window, region = pad_window(x[:, :, start:stop])
                    code = first_output(self.encoder(window))
                    codes.append(code)
                    pieces.append((code.shape[1 if self.discrete else 2], region))
                code = torch.cat(codes, dim=1 if self.discrete else 2)
        payload = {"pieces": pieces, "frames": t}
        if self.discrete:
            return Encoded(bits=discrete_bits(code, CODEBOOK_SIZE), indices=code, payload=payload)
        return Encoded(bits=continuous_bits(code, self.spec.latent_bits), latents=code, payload=payload)

    def decode(self, encoded: Encoded) -> torch.Tensor:
        code = encoded.indices if self.discrete else encoded.latents
        b, t = code.shape[0], encoded.payload["frames"]
        with torch.inference_mode(), self.precision():
            if not self.video:
                (_, region), = encoded.payload["pieces"]
                if self.discrete:
                    flat = code.reshape(b * t, *code.shape[2:])
                else:
                    flat = code.permute(0, 2, 1, 3, 4).reshape(b * t, code.shape[1], *code.shape[3:])
                y = crop(self.decoder(flat), region)
                return y.reshape(b, t, *y.shape[1:]).permute(0, 2, 1, 3, 4).float()
            outs, at = [], 0
            dim = 1 if self.discrete else 2
            for length, region in encoded.payload["pieces"]:
                piece = code.narrow(dim, at, length)
                at += length
                outs.append(crop(self.decoder(piece), region))
            return torch.cat(outs, dim=2).float()

    def describe(self) -> dict:
        d = super().describe()
        d["temporal_window"] = self.temporal_window if self.video else None
        d["loader"] = "torch.jit.load"
        return d


# ---------------------------------------------------------------- loading


def jit_files(spec: TokenizerSpec, checkpoint: Optional[str]) -> tuple[Path, Path]:
    """encoder.jit and decoder.jit: from ``--checkpoint`` (their folder, or either file), else the weights
    folder / Hugging Face cache / a download, else one MissingWeightsError line."""
    if checkpoint is not None:
        p = Path(checkpoint).expanduser()
        folder = p.parent if p.is_file() else p
        if not folder.is_dir():
            raise MissingWeightsError(f"{spec.name}: checkpoint folder {folder} does not exist")
        enc, dec = folder / "encoder.jit", folder / "decoder.jit"
        for f in (enc, dec):
            if not f.is_file():
                raise MissingWeightsError(f"{spec.name}: {f} is missing; the folder needs encoder.jit and "
                                          f"decoder.jit from hf://{spec.checkpoint.hub_repo}")
        return enc, dec
    enc_wf = spec.checkpoint
    dec_wf = replace(enc_wf, name=enc_wf.name.replace("encoder", "decoder"),
                     filename=enc_wf.filename.replace("encoder.jit", "decoder.jit"), hub_filename="decoder.jit")
    return resolve(enc_wf, what=spec.name), resolve(dec_wf, what=spec.name)


def load_jit(path: Path, spec: TokenizerSpec):
    try:
        with warnings.catch_warnings():  # torch >= 2.10 deprecates TorchScript; Cosmos ships nothing else
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(str(path), map_location="cpu").eval()
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise BadInputError(f"tokenizer {spec.name}: {path} is not a loadable TorchScript file ({first})") from None


def cosmos(spec, *, checkpoint=None, allow_unsafe: bool = False, temporal_window: int = TEMPORAL_WINDOW):
    enc_path, dec_path = jit_files(spec, checkpoint)
    if not all(torchscript_trusted(p, allow_unsafe)[0] for p in (enc_path, dec_path)):  # the TorchScript rule
        raise UnsafeCheckpointError(
            f"{spec.name}: {enc_path.name} and {dec_path.name} in {enc_path.parent} are TorchScript programs "
            f"(their code runs when the model is called); pass --allow-unsafe-checkpoint (allow_unsafe=True) if you "
            f"trust them "
            f"(the official files come from hf://{spec.checkpoint.hub_repo})")
    tok = CosmosTokenizer(spec, load_jit(enc_path, spec), load_jit(dec_path, spec), temporal_window=temporal_window,
                          checkpoint_path=str(enc_path.parent))
    check_latent_shape(tok, enc_path)
    from tokbench.data.dataset import sha256_file

    tok.checkpoint_sha256 = f"encoder.jit:{sha256_file(enc_path)},decoder.jit:{sha256_file(dec_path)}"
    return tok


def check_latent_shape(tok: CosmosTokenizer, enc_path: Path) -> None:
    """Encode one small black window and compare the code's shape with the spec: files of another Cosmos
    variant (other factors, channels, or continuous for discrete) are refused before any item runs."""
    spec = tok.spec
    side = SPATIAL_ALIGN * max(1, spec.spatial_factor // SPATIAL_ALIGN)
    shape = (1, 3, 1 + spec.temporal_factor, side, side) if tok.video else (1, 3, side, side)
    x, _ = pad_window(torch.full(shape, -1.0))
    try:
        with torch.inference_mode():
            code = first_output(tok.encoder(x))
    except Exception as e:  # noqa: BLE001
        raise BadInputError(f"tokenizer {spec.name}: {enc_path} fails on a {'x'.join(map(str, x.shape))} probe "
                            f"({type(e).__name__}: {str(e).strip()[:200]})") from None
    s = side // spec.spatial_factor
    lat = ((1 + (x.shape[2] - 1) // spec.temporal_factor,) if tok.video else ()) + (s, s)
    expected = (1, *lat) if tok.discrete else (1, spec.latent_channels, *lat)
    if not isinstance(code, torch.Tensor) or tuple(code.shape) != expected:
        got = tuple(code.shape) if isinstance(code, torch.Tensor) else type(code).__name__
        raise BadInputError(f"tokenizer {spec.name}: {enc_path} gives a code of shape {got} for a "
                            f"{'x'.join(map(str, x.shape))} input, the spec expects {expected}; these files are "
                            f"another Cosmos variant")


def cosmos_image(spec, *, checkpoint=None, allow_unsafe: bool = False):
    return cosmos(spec, checkpoint=checkpoint, allow_unsafe=allow_unsafe)


def register(variant: str, version: str = "0.1", aliases: tuple[str, ...] = (), published: str | None = None):
    """``variant`` like "CV4x8x8" / "DI16x16": Continuous or Discrete, Image or Video, then the factors."""
    continuous, video = variant[0] == "C", variant[1] == "V"
    factors = [int(f) for f in variant[2:].split("x")]
    temporal, spatial = (factors[0], factors[1]) if video else (1, factors[0])
    repo = f"nvidia/Cosmos-{version}-Tokenizer-{variant}"
    folder = f"Cosmos-{version}-Tokenizer-{variant}"
    name = f"cosmos-{variant.lower()}" if version == "0.1" else f"cosmos-{version}-{variant.lower()}"
    spec = TokenizerSpec(
        name=name, family="cosmos-jit", kind="continuous" if continuous else "discrete",
        modalities=frozenset({"image", "video"}) if video else frozenset({"image"}),
        input_range=(-1.0, 1.0), spatial_factor=spatial, temporal_factor=temporal, causal_first_frame=video,
        spatial_multiple=SPATIAL_ALIGN, latent_channels=16 if continuous else None,
        codebook_size=None if continuous else CODEBOOK_SIZE, latent_bits=LATENT_BITS if continuous else None,
        default_clip_frames=TEMPORAL_WINDOW if video else None,
        checkpoint=WeightFile(name=f"cosmos:{name}:encoder", filename=f"{folder}/encoder.jit", hub_repo=repo,
                              hub_filename="encoder.jit", license=LICENSE,
                              description=f"Cosmos {variant} TorchScript encoder (decoder.jit sits beside it)"),
        license=LICENSE, aliases=aliases, published=published,
        description=(f"NVIDIA Cosmos {version} {'continuous' if continuous else 'discrete'} "
                     f"{'video' if video else 'image'} tokenizer {variant}"
                     + ("" if continuous else ", FSQ 64,000 codes")
                     + " (TorchScript; needs --allow-unsafe-checkpoint)"))
    register_tokenizer(spec)(cosmos if video else cosmos_image)
    return spec


for _variant in ("CI8x8", "CI16x16", "DI8x8", "DI16x16", "CV4x8x8", "CV8x8x8", "CV8x16x16",
                 "DV4x8x8", "DV8x8x8", "DV8x16x16"):
    register(_variant, aliases=(f"cosmos-0.1-{_variant.lower()}",),
             published={"CV4x8x8": "Cosmos-CV", "CV8x16x16": "Cosmos-CV", "DV4x8x8": "Cosmos-DV",
                        "DV8x16x16": "Cosmos-DV"}.get(_variant))
for _variant in ("CV8x8x8", "DV8x16x16"):
    register(_variant, version="1.0")
