"""VidTok (microsoft/VidTok): causal and non-causal video tokenizers, KL (continuous) and FSQ (discrete), run
through diffusers' own ``AutoencoderVidTok`` (diffusers >= 0.38).

Why these choices:

* Weights: the released Lightning ``.ckpt`` files (``hf://microsoft/VidTok/checkpoints/...``), found in
  ``<weights dir>/vidtok/<file>.ckpt``, the Hugging Face cache or ``--checkpoint FILE``; read with
  ``torch.load(weights_only=True)`` and converted strictly (``tokbench.models.vidtok``). No
  diffusers-format VidTok repo was found on the hub (microsoft/VidTok holds only the .ckpt files).
* Frames: causal models code clips of T = 1 + k * temporal_factor frames (17 by default, the length upstream
  evaluates); like diffusers' ``forward`` (and upstream's encoder), ``temporal_factor - 1`` copies of the first
  frame go in front and the decoder drops them again. Non-causal models code 16-frame clips (upstream's
  evaluation length); diffusers' non-causal decoder needs a multiple of 16 frames, so a shorter clip gets its
  last frame repeated (as diffusers' ``forward`` does) and the extra frames are cropped; they are video-only
  (an image would cost 16 frames' latents).
* KL models decode the posterior mean (upstream's inference samples; ``sample=true,seed=N`` does that here).
  Rate: latent elements x 16 bits, as the other diffusers VAEs.
* FSQ models decode the quantised latents diffusers' ``encode`` returns (what upstream's ``forward`` decodes);
  rate: latent positions x log2(8 ** channels) (the indices diffusers returns, counted).
* Registered: the 7 v1.1 causal and the 6 non-causal checkpoints, which diffusers runs as upstream does (checked
  against upstream's modules to float32 rounding). Not registered: the 10 v1.0 causal checkpoints. diffusers'
  class implements v1.1's causal padding (the first frame repeated inside every causal convolution, replicate
  padding before temporal down-sampling, trilinear temporal up-sampling); upstream's v1.0 code zero-pads and
  up-samples time with nearest, so those weights would run as a different model (outputs differ by the order of
  the signal itself) -- a number under their name would not be theirs.
"""
from __future__ import annotations

import warnings
from typing import Optional

import torch

from tokbench.errors import BadInputError, TokbenchError
from tokbench.tokenizers.base import Encoded, TokenizerSpec, continuous_bits, discrete_bits
from tokbench.tokenizers.registry import register_tokenizer
from tokbench.tokenizers.torch_module import ModuleTokenizer
from tokbench.weights import WeightFile, register_weights, resolve

LATENT_BITS = 16  # KL latents stored as bf16/fp16, as for the other diffusers VAEs
CAUSAL_CLIP_FRAMES = 17
NONCAUSAL_CLIP_FRAMES = 16  # also diffusers' num_sample_frames_batch_size: non-causal clips are padded to it
RELEASED_WIDTH = 128
LICENSE = "MIT (doc)"



def _spec(release) -> TokenizerSpec:
    fsq = release.regularizer == "fsq"
    s, t = release.spatial_factor, release.temporal_factor
    kind = f"FSQ {release.codebook_size:,} codes ({release.z_channels} x 8 levels)" if fsq else \
        f"KL {release.z_channels} ch"
    version = "v1.1, fine-tuned for long causal videos" if release.v1_1 else "v1.0"
    weights = register_weights(WeightFile(
        name=f"vidtok:{release.name}", filename=f"vidtok/{release.file}.ckpt", hub_repo="microsoft/VidTok",
        hub_filename=release.hub_filename, license=LICENSE,
        description=f"VidTok {release.file} Lightning checkpoint (converted to diffusers' AutoencoderVidTok)"))
    return TokenizerSpec(
        name=release.name, family="vidtok", kind="discrete" if fsq else "continuous",
        modalities=frozenset({"image", "video"} if release.causal else {"video"}), input_range=(-1.0, 1.0), spatial_factor=s, temporal_factor=t,
        causal_first_frame=release.causal, spatial_multiple=s, latent_channels=release.z_channels,
        codebook_size=release.codebook_size, latent_bits=None if fsq else LATENT_BITS,
        default_clip_frames=CAUSAL_CLIP_FRAMES if release.causal else NONCAUSAL_CLIP_FRAMES,
        checkpoint=weights, license=LICENSE, published=None,
        description=f"VidTok {'causal' if release.causal else 'non-causal'} {t}x{s}x{s}, {kind}, {version}"
                    + ("" if release.causal else f"; clips padded to a multiple of {NONCAUSAL_CLIP_FRAMES} frames"))


class VidTokTokenizer(ModuleTokenizer):
    """(B, 3, T, H, W) in [-1, 1] -> AutoencoderVidTok latents (KL mean / sample, or FSQ codes + indices) -> video."""

    def __init__(self, spec: TokenizerSpec, model, release, *, sample: bool = False, seed: int = 0,
                 checkpoint_path=None, checkpoint_sha256=None):
        super().__init__(spec, channels_last=False, checkpoint_path=checkpoint_path,
                         checkpoint_sha256=checkpoint_sha256)
        self.model = model
        self.modules = [model]
        self.release = release
        self.sample, self.seed = bool(sample), int(seed)
        if self.sample and release.regularizer != "kl":
            raise BadInputError(f"tokenizer {spec.name}: sample=true needs a KL model; FSQ codes are deterministic")

    def _model_input(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[2]
        if self.release.causal:  # diffusers' forward(): temporal_factor - 1 copies of the first frame in front
            lead = self.model.temporal_compression_ratio - 1
            return torch.cat([x[:, :, :1].expand(-1, -1, lead, -1, -1), x], dim=2)
        extra = -t % NONCAUSAL_CLIP_FRAMES
        return torch.cat([x, x[:, :, -1:].expand(-1, -1, extra, -1, -1)], dim=2) if extra else x

    def encode(self, x: torch.Tensor) -> Encoded:
        t = x.shape[2]
        inp = self.prepare(self._model_input(x))
        with torch.inference_mode(), self.precision():
            out = self.model.encode(inp)
            if self.release.regularizer == "fsq":
                z, indices = out
                return Encoded(bits=discrete_bits(indices, self.spec.codebook_size), latents=z, indices=indices,
                               payload={"frames": t})
            dist = out.latent_dist
            z = dist.sample(generator=torch.Generator("cpu").manual_seed(self.seed)) if self.sample else dist.mode()
        return Encoded(bits=continuous_bits(z, LATENT_BITS), latents=z, payload={"frames": t})

    def decode(self, encoded: Encoded) -> torch.Tensor:
        if encoded.latents is None:
            raise BadInputError(f"tokenizer {self.spec.name}: decode needs the latents encode returned")
        with torch.inference_mode(), self.precision():
            y = self.model.decode(encoded.latents)  # causal: the leading temporal_factor - 1 frames are dropped
        return y[:, :, :encoded.payload["frames"]].float()

    def describe(self) -> dict:
        import diffusers

        d = super().describe()
        d.update(diffusers_class=type(self.model).__name__, diffusers_version=diffusers.__version__,
                 model_config={k: v for k, v in self.model.config.items() if not k.startswith("_")},
                 upstream_checkpoint=f"hf://microsoft/VidTok/{self.release.hub_filename}",
                 posterior=("sample" if self.sample else "mean") if self.release.regularizer == "kl" else None,
                 decode_from="quantised latents (FSQ codes)" if self.release.regularizer == "fsq" else "latents")
        return d


def load_vidtok(spec: TokenizerSpec, path, *, allow_unsafe: bool = False, sample: bool = False,
                seed: int = 0) -> VidTokTokenizer:
    """The tokenizer of entry ``spec`` from an upstream VidTok checkpoint file. The architecture is the
    release's; only the base width follows the file (128 in every release; smaller in test files, with a
    warning)."""
    from tokbench.checkpoints import load_checkpoint
    from tokbench.data.dataset import sha256_file
    from tokbench.models.checkpoint_keys import CheckpointMismatch, unwrap_state_dict
    from tokbench.models.vidtok import RELEASES, base_width, load_converted

    try:
        import diffusers
    except ImportError:
        raise TokbenchError(f"tokenizer {spec.name} needs diffusers>=0.38 (AutoencoderVidTok)") from None
    if not hasattr(diffusers, "AutoencoderVidTok"):
        raise TokbenchError(f"tokenizer {spec.name} needs diffusers.AutoencoderVidTok, missing from diffusers "
                            f"{diffusers.__version__}; install diffusers>=0.38")
    release = RELEASES[spec.name]
    obj = load_checkpoint(path, allow_unsafe=allow_unsafe, what=spec.name)
    where = f"tokenizer {spec.name}: checkpoint {path}"
    try:
        ch = base_width(unwrap_state_dict(obj, ("state_dict",))) or RELEASED_WIDTH
        if ch != RELEASED_WIDTH:
            warnings.warn(f"{spec.name}: {path} has base width {ch}, not the released {RELEASED_WIDTH}; "
                          f"built as the file says", stacklevel=2)
        model = load_converted(release.diffusers_config(ch=ch), obj, where=where)
    except CheckpointMismatch as e:
        msg = str(e)
        raise BadInputError(msg if msg.startswith(where) else f"{where}: {msg}") from None
    return VidTokTokenizer(spec, model, release, sample=sample, seed=seed, checkpoint_path=str(path),
                           checkpoint_sha256=sha256_file(path))


def _factory(spec: TokenizerSpec, *, checkpoint: Optional[str] = None, allow_unsafe: bool = False,
             sample: bool = False, seed: int = 0) -> VidTokTokenizer:
    path = resolve(spec.checkpoint, explicit=checkpoint, what=spec.name)
    return load_vidtok(spec, path, allow_unsafe=allow_unsafe, sample=sample, seed=seed)


def _register() -> None:
    from tokbench.models.vidtok import RELEASES

    for release in RELEASES.values():
        if release.runs_as_upstream:  # v1.0 causal checkpoints: see the module docstring
            register_tokenizer(_spec(release))(_factory)


_register()
