"""diffusers autoencoders as tokenizers: the SD / SDXL / SD3.5 / FLUX.1 image VAEs (``AutoencoderKL``), FLUX.2
(``AutoencoderKLFlux2``), Qwen-Image, DC-AE (``AutoencoderDC``) and the video VAEs of CogVideoX, HunyuanVideo
(1.0 and 1.5), Wan 2.1 / 2.2, LTX-Video and Mochi.

Why these choices:

* Input is [-1, 1] (the spec says so; the harness maps pixels there). Images are ``B,3,H,W``; an image model
  given a clip codes every frame on its own. Video models get ``B,3,T,H,W`` clips that satisfy their frame rule.
  Image models built on a video architecture (Qwen-Image) take each frame as a one-frame clip ``B,3,1,H,W``.
* KL models decode the posterior **mean** (``latent_dist.mode()``): deterministic, and what a reconstruction
  benchmark should measure. ``sample=true`` draws ``mean + std * noise`` from a CPU generator seeded with
  ``seed`` at every ``encode`` call (reproducible per batch, the same on CPU and GPU, unaffected by caching).
* No ``scaling_factor`` / ``shift_factor`` / ``latents_mean/std``: they only rescale latents for diffusion
  training, and encode -> decode without them is exactly the autoencoder.
* Rate: latent elements x ``latent_bits`` = 16 (latents stored as bf16/fp16, as latent diffusion models keep
  them), counted on the latents actually produced (frame padding included).
* Weights: ``--checkpoint FOLDER`` (a diffusers folder with config.json + diffusion_pytorch_model.safetensors,
  or a pipeline snapshot with a ``vae/`` subfolder); else ``<weights dir>/<name>/``; else the Hugging Face cache
  or a download (unless TOKBENCH_OFFLINE / HF_HUB_OFFLINE is set). Absent weights end in one
  ``MissingWeightsError`` line naming the repo and the folder to fill. diffusers reads safetensors, and ``.bin``
  files only with ``torch.load(weights_only=True)``.
* Memory: ``tiling=true`` / ``slicing=true`` switch on diffusers' tiled / per-sample paths (they change results
  slightly at tile seams, so they are off by default and recorded in the label).
"""
from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from tokbench.errors import BadInputError, MissingWeightsError, TokbenchError
from tokbench.tokenizers.base import Encoded, TokenizerSpec, continuous_bits
from tokbench.tokenizers.registry import register_tokenizer
from tokbench.tokenizers.torch_module import ModuleTokenizer
from tokbench.weights import WeightFile, hub_unreachable, weights_dir

DIFFUSERS_REQUIREMENT = "diffusers>=0.33"  # first release with every class used here (AutoencoderKLWan)
LATENT_BITS = 16  # latents stored as bf16/fp16
VIDEO_CLIP_FRAMES = 49  # 1 + 48: satisfies the 4x, 6x and 8x frame rules; CogVideoX's native length
WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass(frozen=True)
class Source:
    """Where a registered diffusers model comes from."""

    cls: str  # diffusers class name
    repo: str  # Hugging Face repo id
    subfolder: Optional[str] = None  # "vae" inside pipeline repos
    frame_multiple: Optional[int] = None  # the model's own rule T = 1 + k * m when stricter than the spec's
    one_frame_clips: bool = False  # an image model that takes B,C,1,H,W (a video architecture used on images)
    per_sample: bool = False  # the class mishandles batches > 1: always code one sample at a time (its slicing)


SOURCES: dict[str, Source] = {}


def weight_file(name: str, source: Source, license: str) -> WeightFile:
    """A diffusers folder, located by its config.json (weights dir ``<name>/`` or the Hugging Face cache)."""
    inner = f"{source.subfolder}/config.json" if source.subfolder else "config.json"
    return WeightFile(name=f"diffusers:{name}", filename=f"{name}/config.json", hub_repo=source.repo,
                      hub_filename=inner, license=license,
                      description=f"diffusers {source.cls} folder (config.json + diffusion_pytorch_model.safetensors)")


# ---------------------------------------------------------------- loading


def import_diffusers(name: str):
    try:
        import diffusers
    except ImportError:
        raise TokbenchError(f"tokenizer {name} needs the diffusers package: pip install 'tokbench[diffusers]' "
                            f"({DIFFUSERS_REQUIREMENT})") from None
    return diffusers


def find_folder(spec: TokenizerSpec, source: Source, checkpoint: Optional[str]) -> Optional[Path]:
    """The local diffusers folder to load, or None when only the hub is left."""
    if checkpoint is not None:
        p = Path(checkpoint).expanduser()
        if p.is_file() and p.name == "config.json":
            p = p.parent
        if p.is_file():
            raise BadInputError(f"tokenizer {spec.name}: --checkpoint {p} is a file; pass the diffusers folder "
                                f"that holds config.json and diffusion_pytorch_model.safetensors")
        if not p.is_dir():
            raise MissingWeightsError(f"{spec.name}: checkpoint folder {p} does not exist")
        if not (p / "config.json").is_file() and source.subfolder and (p / source.subfolder / "config.json").is_file():
            p = p / source.subfolder  # a whole pipeline snapshot
        if not (p / "config.json").is_file():
            raise MissingWeightsError(f"{spec.name}: {p} has no config.json; pass a diffusers {source.cls} folder "
                                      f"(config.json + diffusion_pytorch_model.safetensors)")
        return p
    local = spec.checkpoint.find_local() if spec.checkpoint else None
    return local.parent if local is not None else None


def folder_digest(folder: Path) -> Optional[str]:
    """sha256 over the folder's config and weight files (name + content): what the manifest records."""
    files = sorted(f for f in folder.iterdir()
                   if f.is_file() and (f.name == "config.json" or f.suffix in WEIGHT_SUFFIXES))
    if not files:
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def load_model(spec: TokenizerSpec, checkpoint: Optional[str]):
    """Returns (model, where it came from, sha256 or None)."""
    source = SOURCES[spec.name]
    diffusers = import_diffusers(spec.name)
    cls = getattr(diffusers, source.cls, None)
    if cls is None:
        raise TokbenchError(f"tokenizer {spec.name} needs diffusers.{source.cls}, missing from diffusers "
                            f"{diffusers.__version__}; install {DIFFUSERS_REQUIREMENT}")
    kwargs = {}
    try:
        import accelerate  # noqa: F401
    except ImportError:
        kwargs["low_cpu_mem_usage"] = False  # the default would warn that accelerate is missing
    folder = find_folder(spec, source, checkpoint)
    if folder is not None:
        found = json.loads((folder / "config.json").read_text()).get("_class_name")
        if found and found != source.cls:
            raise BadInputError(f"tokenizer {spec.name}: {folder}/config.json describes a {found}, "
                                f"expected a {source.cls}")
        try:
            model = strict_from_pretrained(cls, spec.name, _weights_label(folder), str(folder), local_files_only=True,
                                           **kwargs)
        except OSError as e:  # config present, weights absent
            raise MissingWeightsError(f"{spec.name}: {folder} is not a complete diffusers {source.cls} folder "
                                      f"({first_line(e)})") from None
        return model.eval(), str(folder), folder_digest(folder)
    where = f"hf://{source.repo}" + (f"/{source.subfolder}" if source.subfolder else "")
    put = weights_dir() / spec.name
    unreachable = hub_unreachable()  # offline variables or a failed connection probe: no retries, one line
    is_offline = unreachable is not None
    try:
        with warnings.catch_warnings():  # diffusers passes an argument huggingface_hub >= 1.0 deprecates
            warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*")
            model = strict_from_pretrained(cls, spec.name, where, source.repo, subfolder=source.subfolder,
                                           local_files_only=is_offline, **kwargs)
    except OSError as e:
        why = (f"{unreachable} and {where} is not in the Hugging Face cache" if is_offline else
               f"download of {where} failed: {first_line(e)}")
        raise MissingWeightsError(f"{spec.name}: {why}; put the diffusers folder (config.json + "
                                  f"diffusion_pytorch_model.safetensors) in {put} or pass --checkpoint FOLDER") from None
    local = spec.checkpoint.find_local()  # the snapshot the download left in the Hugging Face cache
    return model.eval(), (str(local.parent) if local else where), (folder_digest(local.parent) if local else None)


def _weights_label(folder: Path) -> str:
    files = sorted(f.name for f in folder.iterdir() if f.suffix in WEIGHT_SUFFIXES) if folder.is_dir() else []
    return str(folder / files[0]) if len(files) == 1 else str(folder)


def _keys(keys, n: int = 4) -> str:
    keys = [str(k) for k in keys]
    return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")


def strict_from_pretrained(cls, name: str, where: str, *args, **kwargs):
    """``cls.from_pretrained`` that refuses a checkpoint whose tensors do not fill the model exactly (as the
    omni loader does): diffusers would leave missing weights randomly initialised with a warning (the run
    then fails much later, or scores noise), and a shape mismatch is a long traceback."""
    from diffusers.utils import logging as dlog

    level = dlog.get_verbosity()
    dlog.set_verbosity_error()  # its "newly initialized" warnings are replaced by the one line below
    try:
        model, info = cls.from_pretrained(*args, output_loading_info=True, ignore_mismatched_sizes=True, **kwargs)
    finally:
        dlog.set_verbosity(level)
    problems = []
    if info.get("missing_keys"):
        problems.append(f"missing {_keys(info['missing_keys'])}")
    if info.get("mismatched_keys"):
        problems.append("wrong shape " + _keys(f"{k} {tuple(a)} (model {tuple(b)})"
                                               for k, a, b in info["mismatched_keys"]))
    if info.get("unexpected_keys"):
        problems.append(f"unexpected {_keys(info['unexpected_keys'])}")
    if info.get("error_msgs"):
        problems.append(first_line(Exception(info["error_msgs"][0])))
    if problems:
        raise BadInputError(f"tokenizer {name}: checkpoint {where} does not match diffusers.{cls.__name__}: "
                            + "; ".join(problems))
    return model


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


# ---------------------------------------------------------------- the tokenizer


class DiffusersVAE(ModuleTokenizer):
    """One adapter for every diffusers autoencoder; ``video`` says whether the model takes B,C,T,H,W."""

    def __init__(self, spec: TokenizerSpec, model, *, video: bool, sample: bool = False, seed: int = 0,
                 tiling: bool = False, slicing: bool = False, channels_last: Optional[bool] = None,
                 frame_multiple: Optional[int] = None, decode_timestep: Optional[float] = None,
                 decode_noise_scale: Optional[float] = None, checkpoint_path=None, checkpoint_sha256=None):
        super().__init__(spec, channels_last=channels_last, checkpoint_path=checkpoint_path,
                         checkpoint_sha256=checkpoint_sha256)
        self.model = model
        self.modules = [model]
        self.video = video
        self.one_frame_clips = spec.name in SOURCES and SOURCES[spec.name].one_frame_clips
        self.image_convolutions = not video and not self.one_frame_clips
        self.sample, self.seed = bool(sample), int(seed)
        self.frame_multiple = frame_multiple
        self.decode_timestep, self.decode_noise_scale = decode_timestep, decode_noise_scale
        self.per_sample = spec.name in SOURCES and SOURCES[spec.name].per_sample
        for wanted, mode in ((tiling, "tiling"), (slicing or self.per_sample, "slicing")):
            if wanted:
                if not hasattr(model, f"use_{mode}"):
                    raise BadInputError(f"tokenizer {spec.name}: {type(model).__name__} has no {mode}")
                getattr(model, f"enable_{mode}")()

    def generator(self) -> torch.Generator:
        return torch.Generator("cpu").manual_seed(self.seed)

    # layout: harness clips (B, C, T, H, W) <-> what the model takes
    def _model_input(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        if not self.video:
            frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
            return frames[:, :, None] if self.one_frame_clips else frames
        if self.frame_multiple and (t - 1) % self.frame_multiple:
            # the model's own rule is stricter than the spec's: repeat the last frame, crop after decoding
            extra = self.frame_multiple - (t - 1) % self.frame_multiple
            x = torch.cat([x, x[:, :, -1:].expand(-1, -1, extra, -1, -1)], dim=2)
        return x

    def encode(self, x: torch.Tensor) -> Encoded:
        b, _, t, _, _ = x.shape
        inp = self.prepare(self._model_input(x))
        with torch.inference_mode(), self.precision():
            out = self.model.encode(inp)
            dist = getattr(out, "latent_dist", None)
            if dist is None:  # AutoencoderDC: deterministic
                z = out.latent
            else:
                z = dist.sample(generator=self.generator()) if self.sample else dist.mode()
        if not self.video:  # (B*T, c, [1,] h, w) -> (B, c, T, h, w)
            if self.one_frame_clips:
                z = z[:, :, 0]
            z = z.reshape(b, t, *z.shape[1:]).permute(0, 2, 1, 3, 4)
        return Encoded(bits=continuous_bits(z, self.spec.latent_bits), latents=z, payload={"frames": t})

    def decode(self, encoded: Encoded) -> torch.Tensor:
        z = encoded.latents
        b, t = z.shape[0], encoded.payload["frames"]
        if not self.video:
            c, h, w = z.shape[1], z.shape[3], z.shape[4]
            z = z.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
            if self.one_frame_clips:
                z = z[:, :, None]
            elif self.channels_last:
                z = z.contiguous(memory_format=torch.channels_last)
        kwargs = {}
        if self.decode_timestep is not None and self.model.config.get("timestep_conditioning", False):
            z, kwargs["temb"] = self._ltx_decode_conditioning(z)
        with torch.inference_mode(), self.precision():
            y = self.model.decode(z, **kwargs).sample
        if not self.video:
            if self.one_frame_clips:
                y = y[:, :, 0]
            y = y.reshape(b, t, *y.shape[1:]).permute(0, 2, 1, 3, 4)
        return y[:, :, :t].float()

    def _ltx_decode_conditioning(self, z: torch.Tensor):
        """LTX-Video >= 0.9.1 decoders take a timestep; as its pipeline does, a nonzero timestep also mixes
        that much noise into the latents (``decode_noise_scale`` defaults to the timestep)."""
        scale = self.decode_timestep if self.decode_noise_scale is None else self.decode_noise_scale
        if scale:
            noise = torch.randn(z.shape, generator=self.generator(), dtype=torch.float32).to(z.device, z.dtype)
            z = (1 - scale) * z + scale * noise
        temb = torch.full((z.shape[0],), float(self.decode_timestep), device=z.device, dtype=z.dtype)
        return z, temb

    def describe(self) -> dict:
        d = super().describe()
        d["diffusers_class"] = type(self.model).__name__
        d["posterior"] = "sample" if self.sample else "mean"
        if self.per_sample:
            d["per_sample"] = "batches are coded one sample at a time (the class's batched causal attention is wrong)"
        try:
            import diffusers

            d["diffusers_version"] = diffusers.__version__
        except ImportError:  # pragma: no cover - the model could not exist without it
            pass
        return d


# ---------------------------------------------------------------- factories (their keyword options are the
# tokenizer's options: ``--tokenizer sd-vae-ft-mse:sample=true,seed=3``)


def kl_image(spec, *, checkpoint=None, sample: bool = False, seed: int = 0, tiling: bool = False,
             slicing: bool = False, channels_last: Optional[bool] = None):
    model, where, sha = load_model(spec, checkpoint)
    return DiffusersVAE(spec, model, video=False, sample=sample, seed=seed, tiling=tiling, slicing=slicing,
                        channels_last=channels_last, checkpoint_path=where, checkpoint_sha256=sha)


def dc_image(spec, *, checkpoint=None, tiling: bool = False, slicing: bool = False,
             channels_last: Optional[bool] = None):
    model, where, sha = load_model(spec, checkpoint)
    return DiffusersVAE(spec, model, video=False, tiling=tiling, slicing=slicing, channels_last=channels_last,
                        checkpoint_path=where, checkpoint_sha256=sha)


def kl_video(spec, *, checkpoint=None, sample: bool = False, seed: int = 0, tiling: bool = False,
             slicing: bool = False):
    model, where, sha = load_model(spec, checkpoint)
    return DiffusersVAE(spec, model, video=True, sample=sample, seed=seed, tiling=tiling, slicing=slicing,
                        frame_multiple=SOURCES[spec.name].frame_multiple, checkpoint_path=where,
                        checkpoint_sha256=sha)


def ltx_video(spec, *, checkpoint=None, sample: bool = False, seed: int = 0, tiling: bool = False,
              slicing: bool = False, decode_timestep: float = 0.0, decode_noise_scale: Optional[float] = None):
    model, where, sha = load_model(spec, checkpoint)
    return DiffusersVAE(spec, model, video=True, sample=sample, seed=seed, tiling=tiling, slicing=slicing,
                        decode_timestep=decode_timestep, decode_noise_scale=decode_noise_scale,
                        checkpoint_path=where, checkpoint_sha256=sha)


def register(name: str, source: Source, factory, *, license: str, description: str, aliases=(), **spec_fields):
    video = factory in (kl_video, ltx_video)
    fields = dict(
        family="diffusers-dc" if source.cls == "AutoencoderDC" else "diffusers-kl",
        kind="continuous", input_range=(-1.0, 1.0), latent_bits=LATENT_BITS,
        modalities=frozenset({"image", "video"}) if video else frozenset({"image"}),
    )
    if video:
        fields.update(causal_first_frame=True, default_clip_frames=VIDEO_CLIP_FRAMES)
    fields.update(spec_fields)
    SOURCES[name] = source
    spec = TokenizerSpec(name=name, aliases=tuple(aliases), checkpoint=weight_file(name, source, license),
                         license=license, description=description, **fields)
    register_tokenizer(spec)(factory)
    return spec


# ---------------------------------------------------------------- image VAEs (AutoencoderKL, 8x)

_SD = dict(spatial_factor=8, spatial_multiple=8)
register("sd-vae-ft-ema", Source("AutoencoderKL", "stabilityai/sd-vae-ft-ema"), kl_image, latent_channels=4,
         license="MIT (doc)", aliases=("sd-vae-ema",), **_SD,
         description="Stable Diffusion 1.x/2.x VAE, decoder fine-tuned with EMA weights (KL-f8, 4 ch)")
register("sd-vae-ft-mse", Source("AutoencoderKL", "stabilityai/sd-vae-ft-mse"), kl_image, latent_channels=4,
         license="MIT (doc)", aliases=("sd-vae-mse",), **_SD,
         description="Stable Diffusion 1.x/2.x VAE, decoder fine-tuned further with MSE-weighted loss (KL-f8, 4 ch)")
register("sdxl-vae", Source("AutoencoderKL", "stabilityai/sdxl-vae"), kl_image, latent_channels=4,
         license="(unverified)", published="SD-XL", **_SD,
         description="SDXL VAE (KL-f8, 4 ch); overflows in fp16: use bf16/fp32 (or the separate fp16-fix weights)")
register("sd35-vae", Source("AutoencoderKL", "stabilityai/stable-diffusion-3.5-large", "vae"), kl_image,
         latent_channels=16, license="Stability AI Community (unverified)", aliases=("sd3.5-vae",), published="SD-3.5", **_SD,
         description="Stable Diffusion 3.5 VAE (KL-f8, 16 ch); the hub repo is gated")
register("flux1-vae", Source("AutoencoderKL", "black-forest-labs/FLUX.1-schnell", "vae"), kl_image,
         latent_channels=16, license="Apache-2.0 for FLUX.1-schnell (unverified)", aliases=("flux-vae",), published="FLUX.1-dev", **_SD,
         description="FLUX.1 VAE (KL-f8, 16 ch), from FLUX.1-schnell; FLUX.1-dev's vae/ folder loads the same way "
                     "via --checkpoint")

# ---------------------------------------------------------------- DC-AE (deterministic, 32-128x)

for _f, _c, _data in ((32, 32, "in"), (64, 128, "in"), (128, 512, "in"), (32, 32, "sana")):
    register(f"dc-ae-f{_f}c{_c}-{_data}",
             Source("AutoencoderDC", f"mit-han-lab/dc-ae-f{_f}c{_c}-{_data}-1.0-diffusers"), dc_image,
             spatial_factor=_f, spatial_multiple=_f, latent_channels=_c, license="(unverified)",
             aliases=("dc-ae",) if (_f, _data) == (32, "in") else (),
             published="DC-AE" if (_f, _data) == (32, "in") else None,
             description=f"Deep Compression AutoEncoder f{_f}c{_c} ({'ImageNet' if _data == 'in' else 'SANA'} "
                         f"1.0), deterministic")

# ---------------------------------------------------------------- video VAEs (causal in time)

register("cogvideox-vae", Source("AutoencoderKLCogVideoX", "THUDM/CogVideoX-2b", "vae", frame_multiple=8),
         kl_video, spatial_factor=8, temporal_factor=4, spatial_multiple=8, latent_channels=16,
         license="Apache-2.0 for CogVideoX-2b (unverified)", aliases=("cogvideox-2b-vae",), published="CogVideoX",
         description="CogVideoX VAE (4x8x8, 16 ch); the model itself needs T = 1 + 8k (it encodes 8-frame "
                     "batches), so 1 + 4k clips get the last frame repeated 4 times inside the adapter")
register("hunyuanvideo-vae", Source("AutoencoderKLHunyuanVideo", "hunyuanvideo-community/HunyuanVideo", "vae"),
         kl_video, spatial_factor=8, temporal_factor=4, spatial_multiple=8, latent_channels=16,
         license="Tencent Hunyuan Community (unverified)", aliases=("hunyuan-vae",), published="Hunyuan-Video",
         description="HunyuanVideo VAE (4x8x8, 16 ch); diffusers codes clips longer than 16 frames in "
                     "overlapping temporal tiles (its default)")
register("wan2.1-vae", Source("AutoencoderKLWan", "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "vae"), kl_video,
         spatial_factor=8, temporal_factor=4, spatial_multiple=8, latent_channels=16,
         license="Apache-2.0 (unverified)", aliases=("wan-vae", "wan21-vae"),
         description="Wan 2.1 VAE (4x8x8, 16 ch), causal with a feature cache: frame 0, then 4-frame chunks")
register("ltx-video-vae", Source("AutoencoderKLLTXVideo", "Lightricks/LTX-Video", "vae"), ltx_video,
         spatial_factor=32, temporal_factor=8, spatial_multiple=32, latent_channels=128,
         license="LTX-Video open weights (unverified)", aliases=("ltx-vae",),
         description="LTX-Video VAE (8x32x32, 128 ch); timestep-conditioned decoders get decode_timestep "
                     "(default 0, no noise)")
register("mochi-vae", Source("AutoencoderKLMochi", "genmo/mochi-1-preview", "vae"), kl_video,
         spatial_factor=8, temporal_factor=6, spatial_multiple=8, latent_channels=12,
         license="Apache-2.0 (unverified)",
         description="Mochi 1 VAE (6x8x8, 12 ch); T = 1 + 6k (the decoder drops the first 5 of 6 frames)")

# ---------------------------------------------------------------- newest families (diffusers >= 0.36)

register("flux2-vae", Source("AutoencoderKLFlux2", "black-forest-labs/FLUX.2-dev", "vae"), kl_image,
         latent_channels=32, license="FLUX.2-dev non-commercial (unverified)", aliases=("flux.2-vae",), **_SD,
         description="FLUX.2 VAE (KL-f8, 32 ch); the pipeline's 2x2 patchify and batch-norm only rescale the "
                     "latents for the transformer, so encode -> decode here is the autoencoder itself; the hub repo "
                     "is gated")
register("qwen-image-vae", Source("AutoencoderKLQwenImage", "Qwen/Qwen-Image", "vae", one_frame_clips=True),
         kl_image, latent_channels=16, license="Apache-2.0 (unverified)", aliases=("qwenimage-vae",), **_SD,
         description="Qwen-Image VAE (KL-f8, 16 ch): a Wan-style causal video VAE used on images, so every "
                     "frame is coded as a one-frame clip")
register("wan2.2-vae", Source("AutoencoderKLWan", "Wan-AI/Wan2.2-TI2V-5B-Diffusers", "vae"), kl_video,
         spatial_factor=16, temporal_factor=4, spatial_multiple=16, latent_channels=48,
         license="Apache-2.0 (unverified)", aliases=("wan22-vae", "wan2.2-ti2v-vae"),
         description="Wan 2.2 TI2V-5B VAE (4x16x16, 48 ch: 2x2 patchify + 8x convolutions, residual), causal with "
                     "a feature cache: frame 0, then 4-frame chunks")
register("hunyuanvideo1.5-vae",
         Source("AutoencoderKLHunyuanVideo15", "hunyuanvideo-community/HunyuanVideo-1.5-480p_t2v", "vae",
                per_sample=True),
         kl_video, spatial_factor=16, temporal_factor=4, spatial_multiple=16, latent_channels=32,
         license="Tencent Hunyuan Community (unverified)", aliases=("hunyuanvideo15-vae", "hunyuan1.5-vae"),
         description="HunyuanVideo 1.5 VAE (4x16x16, 32 ch), causal in time (T = 1 + 4k); every 480p/720p "
                     "pipeline repo carries the same vae/ folder); coded one sample at a time, since diffusers' "
                     "causal attention mask broadcasts wrongly for batches > 1 (0.42)")
