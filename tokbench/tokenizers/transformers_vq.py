"""VQ tokenizers packaged in transformers: Emu3's vision tokenizer (``Emu3VQVAE``) and Janus' generation VQ
(``JanusVQVAE``), as thin adapters over transformers' own classes.

Why these choices:

* Weights come in the files the authors released: BAAI/Emu3-VisionTokenizer's ``model.safetensors`` (upstream's
  custom-code key names) and the ``gen_vision_model.*`` tensors inside the full Janus-Pro checkpoints. A strict,
  checked key mapping turns upstream's names into transformers' (Emu3: 495 tensors; the attention's 1x1 convs
  become Linear weights; Janus: 343 tensors, upstream's ``quantize.codebook_used`` usage counter dropped). Files
  already in transformers' layout (the ``-hf`` conversions, under ``model.vqmodel.``) load unchanged.
* Only the VQ's tensors are read from a multi-GB full-model file: safetensors through ``safe_open``, ``.bin``
  through ``torch.load(weights_only=True, mmap=True)``, shards through their index json (only the shards that
  hold the VQ are opened, and only those need to be present).
* The architecture is read from the file's tensor shapes; a file that is not the released size is built as it
  says, with a warning recorded in ``describe()``.
* Input [-1, 1] as both image processors give it (rescale 1/255, mean 0.5, std 0.5); output unclamped (the
  harness clamps to [-1, 1] and rounds to uint8, as the processors' postprocess does).
* Emu3 is a video tokenizer, 8x spatial and 4x temporal, not causal: clips need T % 4 == 0. An image is four
  copies of itself (what ``Emu3VQVAE.encode`` does with a 4-D input) and the first decoded frame is kept; the
  harness does exactly that. Upstream's autoencode.py codes videos as independent 4-frame groups, so the default
  clip is 4 frames (``--clip-frames`` any multiple of 4). The adapter calls the class's encoder, quant_conv and
  quantizer itself rather than ``encode``, whose per-sample crop indexes (T, h) instead of (h, w) for videos.
* Janus is an image tokenizer, 16x spatial (LlamaGen's VQ-16 with an l2-normalised codebook). Janus feeds it
  384x384 (padded square); any multiple of 16 works (convolutions plus global attention at the lowest level).
  Upstream picks the nearest code after l2-normalising latents and codebook; transformers' ``JanusVQVAE.encode``
  skips that normalisation (its decode keeps it), so its indices can differ. The default ``index_rule=l2`` is
  upstream's rule; ``index_rule=transformers`` reproduces the class's own ``encode``.
* Emu3's attention runs transformers' eager path by default (upstream's plain softmax); ``attention=sdpa``
  takes the fused kernel (float-rounding differences; far less memory at high resolutions on GPUs).
* Rate: tokens x log2(codebook size) from the indices produced (Emu3: one token grid per 4 frames).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from tokbench.errors import BadInputError, MissingWeightsError, TokbenchError
from tokbench.tokenizers.base import Encoded, TokenizerSpec, discrete_bits
from tokbench.tokenizers.registry import register_tokenizer
from tokbench.tokenizers.torch_module import ModuleTokenizer
from tokbench.weights import WeightFile, hub_unreachable, register_weights, resolve, weights_dir

TRANSFORMERS_REQUIREMENT = "transformers>=5"  # the class APIs used here; tested with 5.25
INDEX_RULES = ("l2", "transformers")
ATTENTIONS = ("eager", "sdpa")


# ---------------------------------------------------------------- key layouts


def emu3_key(key: str) -> str:
    """BAAI/Emu3-VisionTokenizer (custom code) name -> ``Emu3VQVAE`` name."""
    key = re.sub(r"^encoder\.down\.", "encoder.down_block.down.", key)
    key = re.sub(r"^decoder\.up\.", "decoder.up_block.up.", key)
    key = re.sub(r"^(encoder|decoder)\.mid\.", r"\1.middle_block.", key)
    key = re.sub(r"\.attn\.(\d+)\.norm\.", r".attn_norms.\1.", key)
    key = key.replace("middle_block.attn_1.norm.", "middle_block.attn_norm.")
    return re.sub(r"(\.attn(?:\.\d+|_1))\.(q|k|v|proj_out)\.",
                  lambda m: f"{m.group(1)}.{'out_proj' if m.group(2) == 'proj_out' else m.group(2) + '_proj'}.", key)


def emu3_tensor(key: str, value: torch.Tensor) -> torch.Tensor:
    """Upstream's attention projections are 1x1 convolutions; transformers' are Linear layers."""
    if re.search(r"\.(q|k|v|out)_proj\.weight$", key) and value.ndim == 4:
        return value[:, :, 0, 0]
    return value


def janus_key(key: str) -> Optional[str]:
    """deepseek-ai/Janus ``gen_vision_model`` (LlamaGen VQModel) name -> ``JanusVQVAE`` name; None: dropped."""
    if key == "quantize.codebook_used":
        return None  # training-time usage statistic
    key = re.sub(r"^(encoder)\.conv_blocks\.", r"\1.down.", key)
    key = re.sub(r"^(decoder)\.conv_blocks\.", r"\1.up.", key)
    key = re.sub(r"\.res\.(\d+)\.", r".block.\1.", key)
    return re.sub(r"\.mid\.([012])\.", lambda m: ".mid." + ("block_1", "attn_1", "block_2")[int(m.group(1))] + ".",
                  key)


def same_tensor(key: str, value: torch.Tensor) -> torch.Tensor:
    return value


@dataclass(frozen=True)
class Family:
    """How one transformers class is fed from upstream's file layout."""

    cls: str  # transformers class
    config_cls: str
    upstream_prefixes: tuple[str, ...]  # where upstream's files keep the VQ's tensors, in search order
    transformers_prefixes: tuple[str, ...]  # where transformers' conversions keep them
    transformers_marker: str  # a key only transformers' layout has
    rename: Callable[[str], Optional[str]]
    retensor: Callable[[str, torch.Tensor], torch.Tensor] = same_tensor


FAMILIES = {
    "emu3": Family("Emu3VQVAE", "Emu3VQVAEConfig", ("",), ("model.vqmodel.", "vqmodel.", ""),
                   "encoder.down_block.down.0.block.0.conv1.weight", emu3_key, emu3_tensor),
    "janus": Family("JanusVQVAE", "JanusVQVAEConfig", ("gen_vision_model.", ""), ("model.vqmodel.", "vqmodel.", ""),
                    "encoder.down.0.block.0.conv1.weight", janus_key),
}


def to_transformers(family: str, state: dict[str, torch.Tensor], layout: str) -> tuple[dict, list[str]]:
    """(state in transformers' names, dropped keys). Two upstream names landing on one key is an error."""
    fam = FAMILIES[family]
    if layout == "transformers":
        return dict(state), []
    out, dropped = {}, []
    for k, v in state.items():
        new = fam.rename(k)
        if new is None:
            dropped.append(k)
            continue
        if new in out:
            raise BadInputError(f"{family}: two checkpoint keys map onto {new}")
        out[new] = fam.retensor(new, v)
    return out, dropped


# ---------------------------------------------------------------- configuration from the file


def _count(state: dict, pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in state if (m := rx.match(k))})


def infer_config(family: str, state: dict[str, torch.Tensor]) -> dict:
    """The architecture the tensors describe (transformers' config fields); KeyError when a tensor is absent.
    Both families share the VQGAN-style encoder/decoder fields; Emu3 names its down path differently and adds
    attention levels, temporal downsampling and the middle block's width."""
    down = "encoder.down_block.down" if family == "emu3" else "encoder.down"
    base = state["encoder.conv_in.weight"].shape[0]
    levels = _count(state, rf"{down}\.(\d+)\.block\.0\.conv1\.weight")
    codebook, embed = state["quantize.embedding.weight"].shape
    shared = dict(
        embed_dim=embed, latent_channels=state["encoder.conv_out.weight"].shape[0], base_channels=base,
        channel_multiplier=[state[f"{down}.{i}.block.0.conv1.weight"].shape[0] // base for i in range(levels)],
        num_res_blocks=_count(state, rf"{down}\.0\.block\.(\d+)\.conv1\.weight"),
        in_channels=state["encoder.conv_in.weight"].shape[1], out_channels=state["decoder.conv_out.weight"].shape[0])
    if family != "emu3":
        return dict(num_embeddings=codebook, **shared)
    return dict(
        codebook_size=codebook, **shared,
        attn_resolutions=[i for i in range(levels) if f"{down}.{i}.attn.0.q_proj.weight" in state],
        temporal_downsample_factor=2 ** _count(state, r"encoder\.time_conv\.(\d+)\."),
        hidden_size=state["encoder.middle_block.attn_1.q_proj.weight"].shape[0])


def import_transformers(name: str):
    try:
        import transformers
    except ImportError:
        raise TokbenchError(f"tokenizer {name} needs the transformers package: pip install 'tokbench[transformers]' "
                            f"({TRANSFORMERS_REQUIREMENT})") from None
    return transformers


def build_on_meta(family: str, config: dict, name: str = "", attention: str = "eager"):
    """The transformers model of ``config`` with meta tensors (filled by ``load_exact``)."""
    transformers = import_transformers(name or family)
    fam = FAMILIES[family]
    cls, cfg_cls = getattr(transformers, fam.cls, None), getattr(transformers, fam.config_cls, None)
    if cls is None or cfg_cls is None:
        raise TokbenchError(f"tokenizer {name or family} needs transformers.{fam.cls}, missing from transformers "
                            f"{transformers.__version__}; install {TRANSFORMERS_REQUIREMENT}")
    cfg = cfg_cls(**config)
    cfg._attn_implementation = attention  # eager: upstream's plain softmax; sdpa: fused (Emu3 only uses it)
    with torch.device("meta"):
        model = cls(cfg)
    return model


# ---------------------------------------------------------------- reading only the VQ's tensors


def _index_shards(index: Path, label: str) -> dict[str, str]:
    try:
        return dict(json.loads(index.read_text())["weight_map"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BadInputError(f"{label}: {index} is not a checkpoint shard index (no weight_map: {e})") from None


def _file_keys(path: Path, label: str) -> tuple[list[str], Callable[[list[str]], dict]]:
    """The keys of one weights file and a reader for a subset of them (lazy: nothing else is read)."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                keys = list(f.keys())
        except Exception as e:
            raise BadInputError(f"{label}: {path} is not a readable safetensors file ({e})") from None

        def read(wanted: list[str]) -> dict:
            with safe_open(str(path), framework="pt") as f:
                return {k: f.get_tensor(k) for k in wanted}

        return keys, read
    try:
        try:  # zip-format torch files map lazily; only the tensors copied below are read from disk
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)  # legacy (pre-zip) format: no mmap
    except Exception as e:
        raise BadInputError(f"{label}: {path} is not a readable weights-only PyTorch checkpoint "
                            f"({str(e).splitlines()[0][:200] if str(e) else type(e).__name__})") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise BadInputError(f"{label}: {path} holds a {type(obj).__name__}, not a state_dict")
    return [k for k, v in obj.items() if isinstance(v, torch.Tensor)], (
        lambda wanted: {k: obj[k].clone() for k in wanted})


@dataclass
class VQTensors:
    state: dict  # the VQ's tensors, prefix removed
    layout: str  # "upstream" or "transformers"
    prefix: str
    files: list  # the files read


def _shard_path(index: Path, shard: str, hub_repo: Optional[str], label: str) -> Path:
    path = index.parent / shard
    if path.is_file():
        return path
    if hub_repo and hub_unreachable() is None:  # fetch only the shard that holds the VQ
        try:
            from huggingface_hub import hf_hub_download

            return Path(hf_hub_download(hub_repo, shard))
        except Exception as e:
            raise MissingWeightsError(f"{label}: shard {shard} of {index} is missing and its download from "
                                      f"hf://{hub_repo} failed ({type(e).__name__}); put it at {path}") from None
    raise MissingWeightsError(f"{label}: shard {shard} named by {index} is missing; put it at {path}")


def read_vq_tensors(family: str, path: Path, label: str, hub_repo: Optional[str] = None) -> VQTensors:
    """The VQ's tensors from a weights file, a shard index json, or a folder holding either."""
    fam = FAMILIES[family]
    if path.is_dir():
        for name in ("model.safetensors.index.json", "pytorch_model.bin.index.json", "model.safetensors",
                     "pytorch_model.bin", "diffusion_pytorch_model.safetensors"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise MissingWeightsError(f"{label}: {path} holds no model.safetensors, pytorch_model.bin or shard index")
    if path.suffix == ".json":
        weight_map = _index_shards(path, label)
        keys = list(weight_map)
    else:
        keys, read = _file_keys(path, label)
    keyset = set(keys)
    for layout, prefixes in (("transformers", fam.transformers_prefixes), ("upstream", fam.upstream_prefixes)):
        for prefix in prefixes:
            if f"{prefix}quantize.embedding.weight" not in keyset:
                continue
            if (prefix + fam.transformers_marker in keyset) != (layout == "transformers"):
                continue
            wanted = [k for k in keys if k.startswith(prefix)]
            if path.suffix == ".json":
                state, files = {}, [path]
                for shard in sorted({weight_map[k] for k in wanted}):
                    shard_file = _shard_path(path, shard, hub_repo, label)
                    _, read_shard = _file_keys(shard_file, label)
                    state.update(read_shard([k for k in wanted if weight_map[k] == shard]))
                    files.append(shard_file)
            else:
                state, files = read(wanted), [path]
            return VQTensors({k[len(prefix):]: v for k, v in state.items()}, layout, prefix, files)
    places = sorted({p + "quantize.embedding.weight" for p in fam.upstream_prefixes + fam.transformers_prefixes})
    raise BadInputError(f"{label}: {path} holds no {family} VQ (looked for {', '.join(places)})")


def files_digest(files: list[Path]) -> str:
    """sha256 of one file, or over several (name + content) for an index and its shards."""
    from tokbench.data.dataset import sha256_file

    if len(files) == 1:
        return sha256_file(files[0])
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()


# ---------------------------------------------------------------- releases


@dataclass(frozen=True)
class Release:
    name: str
    family: str  # key of FAMILIES
    file: str  # under the weights dir
    hub_repo: str
    hub_filename: str
    released: dict  # the released architecture (transformers config fields)
    description: str
    license: str
    aliases: tuple[str, ...] = ()
    published: Optional[str] = None


RELEASES: dict[str, Release] = {}

EMU3_CONFIG = dict(codebook_size=32768, embed_dim=4, latent_channels=4, base_channels=256,
                   channel_multiplier=[1, 2, 2, 4], num_res_blocks=2, attn_resolutions=[3],
                   temporal_downsample_factor=4, hidden_size=1024, in_channels=3, out_channels=3)
JANUS_CONFIG = dict(num_embeddings=16384, embed_dim=8, latent_channels=256, base_channels=128,
                    channel_multiplier=[1, 1, 2, 2, 4], num_res_blocks=2, in_channels=3, out_channels=3)
JANUS_NOTE = ("the gen_vision_model (LlamaGen VQ-16, l2-normalised codebook) inside the full checkpoint; only its "
              "tensors are read")


def release_spec(r: Release) -> TokenizerSpec:
    weights = register_weights(WeightFile(name=r.name, filename=r.file, hub_repo=r.hub_repo,
                                          hub_filename=r.hub_filename, license=r.license, description=r.description))
    cfg = r.released
    if r.family == "emu3":
        f = 2 ** (len(cfg["channel_multiplier"]) - 1)
        return TokenizerSpec(
            name=r.name, family="emu3", kind="discrete", modalities=frozenset({"image", "video"}),
            input_range=(-1.0, 1.0), spatial_factor=f, spatial_multiple=f,
            temporal_factor=cfg["temporal_downsample_factor"], causal_first_frame=False,
            latent_channels=cfg["embed_dim"], codebook_size=cfg["codebook_size"],
            default_clip_frames=cfg["temporal_downsample_factor"], checkpoint=weights, license=r.license,
            aliases=r.aliases, published=r.published, description=r.description)
    f = 2 ** (len(cfg["channel_multiplier"]) - 1)
    return TokenizerSpec(
        name=r.name, family="janus", kind="discrete", modalities=frozenset({"image"}), input_range=(-1.0, 1.0),
        spatial_factor=f, spatial_multiple=f, latent_channels=cfg["embed_dim"], codebook_size=cfg["num_embeddings"],
        checkpoint=weights, license=r.license, aliases=r.aliases, published=r.published, description=r.description)


def register_release(r: Release) -> None:
    RELEASES[r.name] = r
    register_tokenizer(release_spec(r))(_factory)


# ---------------------------------------------------------------- the tokenizer


class TransformersVQTokenizer(ModuleTokenizer):
    """(B, 3, T, H, W) in [-1, 1] -> token indices and back, through a transformers VQ class."""

    def __init__(self, spec: TokenizerSpec, model, family: str, *, index_rule: str = "l2",
                 channels_last: Optional[bool] = None, checkpoint_path=None, checkpoint_sha256=None,
                 notes: Optional[dict] = None):
        super().__init__(spec, channels_last=channels_last, checkpoint_path=checkpoint_path,
                         checkpoint_sha256=checkpoint_sha256)
        self.model, self.family, self.index_rule = model, family, index_rule
        self.modules = [model]
        self.image_convolutions = family == "janus"
        self.notes = dict(notes or {})

    # Emu3: clips (B, T, C, H, W), T % 4 == 0
    def _emu3_codes(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        h = m.encoder(x.permute(0, 2, 1, 3, 4).contiguous())  # (B, T/4, c, h, w)
        h = m.quant_conv(h.permute(0, 2, 1, 3, 4)).permute(0, 2, 1, 3, 4)
        return m.quantize(h)  # (B, T/4, h, w)

    # Janus: frames (N, C, H, W)
    def _janus_codes(self, frames: torch.Tensor) -> torch.Tensor:
        m = self.model
        if self.index_rule == "transformers":
            idx = m.encode(frames).image_tokens
        else:  # upstream's rule: nearest code after l2-normalising latent and codebook
            h = m.quant_conv(m.encoder(frames))
            z = F.normalize(h.permute(0, 2, 3, 1).reshape(-1, h.shape[1]), p=2, dim=-1)
            e = F.normalize(m.quantize.embedding.weight, p=2, dim=-1)
            d = (z ** 2).sum(1, keepdim=True) + (e ** 2).sum(1) - 2 * z @ e.t()
            idx = d.argmin(1)
        return idx.reshape(frames.shape[0], frames.shape[2] // self.spec.spatial_factor,
                           frames.shape[3] // self.spec.spatial_factor)

    def encode(self, x: torch.Tensor) -> Encoded:
        b, c, t, h, w = x.shape
        with torch.inference_mode(), self.precision():
            if self.family == "emu3":
                if t % self.spec.temporal_factor:
                    raise BadInputError(f"tokenizer {self.spec.name}: {t} frames; clips need a multiple of "
                                        f"{self.spec.temporal_factor}")
                codes = self._emu3_codes(self.prepare(x))  # (B, T/4, h, w)
            else:
                frames = self.prepare(x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w))
                codes = self._janus_codes(frames).reshape(b, t, h // self.spec.spatial_factor,
                                                          w // self.spec.spatial_factor)
        return Encoded(bits=discrete_bits(codes, self.spec.codebook_size), indices=codes, payload={"frames": t})

    def decode(self, encoded: Encoded) -> torch.Tensor:
        codes = encoded.indices.to(self.device)
        b, tl, hl, wl = codes.shape
        with torch.inference_mode(), self.precision():
            if self.family == "emu3":
                y = self.model.decode(codes)  # (B, T, C, H, W)
                y = y.permute(0, 2, 1, 3, 4)
            else:
                q = self.model.quantize
                saved = q.quant_state_dims
                q.quant_state_dims = [hl, wl]  # transformers' decode reshapes to this grid
                try:
                    y = self.model.decode(codes.reshape(b * tl, hl * wl))
                finally:
                    q.quant_state_dims = saved
                y = y.reshape(b, tl, *y.shape[1:]).permute(0, 2, 1, 3, 4)
        return y.float()

    def describe(self) -> dict:
        import transformers

        d = super().describe()
        d.update(transformers_class=type(self.model).__name__, transformers_version=transformers.__version__,
                 model_config={k: getattr(self.model.config, k) for k in RELEASES_CONFIG_KEYS[self.family]},
                 output="unclamped model output; the harness clamps to [-1, 1] and rounds to uint8",
                 preprocessing="[-1, 1] = pixels / 127.5 - 1 (the image processors' rescale 1/255, mean 0.5, "
                               "std 0.5); resizing/padding is the harness's", **self.notes)
        if self.family == "emu3":
            d.update(frames="clips of T % 4 == 0 frames, coded as B,T,C,H,W (not causal); an image is repeated "
                            "4 times and the first decoded frame kept (Emu3VQVAE.encode/decode on 4-D input); "
                            "default clip 4 frames, as upstream's autoencode.py groups videos",
                     decode_path="Emu3VQVAE.decode(indices)",
                     encode_path="Emu3VQVAE encoder -> quant_conv -> quantize (its encode() minus the per-sample "
                                 "crop, which indexes (T, h) for videos)")
        else:
            d.update(frames="image tokenizer: every frame on its own; Janus feeds 384x384, any multiple of 16 runs",
                     index_rule=self.index_rule,
                     encode_path=("nearest code after l2-normalising latent and codebook (upstream VectorQuantizer)"
                                  if self.index_rule == "l2" else "JanusVQVAE.encode (no l2 normalisation)"),
                     decode_path="JanusVQVAE.decode(indices) (l2-normalised codebook rows)")
        return d


RELEASES_CONFIG_KEYS = {"emu3": tuple(EMU3_CONFIG), "janus": tuple(JANUS_CONFIG)}


def load_release(spec: TokenizerSpec, path: Path, *, index_rule: str = "l2", attention: str = "eager",
                 channels_last: Optional[bool] = None) -> TransformersVQTokenizer:
    from tokbench.models.checkpoint_keys import CheckpointMismatch, load_exact

    release = RELEASES[spec.name]
    if index_rule not in INDEX_RULES:
        raise BadInputError(f"tokenizer {spec.name}: option index_rule must be one of {', '.join(INDEX_RULES)}, "
                            f"not {index_rule!r}")
    if release.family == "emu3" and index_rule != "l2":
        raise BadInputError(f"tokenizer {spec.name}: index_rule applies to Janus only (Emu3 has one rule)")
    if attention not in ATTENTIONS or (release.family == "janus" and attention != "eager"):
        raise BadInputError(f"tokenizer {spec.name}: option attention must be eager"
                            + (" or sdpa" if release.family == "emu3" else " (Janus' attention is its own)")
                            + f", not {attention!r}")
    found = read_vq_tensors(release.family, path, spec.name, release.hub_repo)
    state, dropped = to_transformers(release.family, found.state, found.layout)
    try:
        config = infer_config(release.family, state)
    except KeyError as e:
        raise BadInputError(f"tokenizer {spec.name}: checkpoint {path} does not fit: no tensor {e.args[0]}") from None
    try:
        model = load_exact(build_on_meta(release.family, config, spec.name, attention), state)
    except CheckpointMismatch as e:
        raise BadInputError(f"tokenizer {spec.name}: checkpoint {path} does not fit "
                            f"transformers.{FAMILIES[release.family].cls}: {e}") from None
    notes = {"attention": attention, "weights_layout": found.layout, "weights_prefix": found.prefix, "dropped_keys": dropped,
             "weights_files": [str(f) for f in found.files]}
    deviations = {k: (v, release.released[k]) for k, v in config.items() if release.released.get(k) != v}
    if deviations:
        diff = ", ".join(f"{k}={got!r} (released: {want!r})" for k, (got, want) in deviations.items())
        warnings.warn(f"{spec.name}: {path} is not the released size ({diff}); built as the file says", stacklevel=2)
        notes["size_deviations"] = {k: list(v) for k, v in deviations.items()}
        f = 2 ** (len(config["channel_multiplier"]) - 1)
        spec = dataclasses.replace(spec, spatial_factor=f, spatial_multiple=f, latent_channels=config["embed_dim"],
                                   codebook_size=config.get("codebook_size", config.get("num_embeddings")),
                                   temporal_factor=config.get("temporal_downsample_factor", 1),
                                   default_clip_frames=config.get("temporal_downsample_factor"))
    return TransformersVQTokenizer(spec, model, release.family, index_rule=index_rule, channels_last=channels_last,
                                   checkpoint_path=str(path), checkpoint_sha256=files_digest(found.files), notes=notes)


def _factory(spec: TokenizerSpec, *, checkpoint: Optional[str] = None, index_rule: str = "l2",
             attention: str = "eager", channels_last: Optional[bool] = None) -> TransformersVQTokenizer:
    if checkpoint is not None and Path(checkpoint).expanduser().is_dir():
        path = Path(checkpoint).expanduser()
    else:
        path = resolve(spec.checkpoint, explicit=checkpoint, what=spec.name)
    return load_release(spec, path, index_rule=index_rule, attention=attention, channels_last=channels_last)


register_release(Release(
    name="emu3-vq", family="emu3", file="emu3-vq/model.safetensors", hub_repo="BAAI/Emu3-VisionTokenizer",
    hub_filename="model.safetensors", released=EMU3_CONFIG, license="Apache-2.0",
    aliases=("emu3-visiontokenizer", "emu3"),
    description="Emu3 vision tokenizer (BAAI/Emu3-VisionTokenizer, upstream custom-code layout) through "
                "transformers' Emu3VQVAE: 8x8 spatial, 4x temporal (not causal), 32768 codes x 4 dims"))
register_release(Release(
    name="janus-pro-1b-vq", family="janus", file="janus-pro-1b/pytorch_model.bin", hub_repo="deepseek-ai/Janus-Pro-1B",
    hub_filename="pytorch_model.bin", released=JANUS_CONFIG, license="MIT (code); DeepSeek Model License (weights)",
    aliases=("janus-vq", "janus-pro-vq"),
    description=f"Janus-Pro-1B's image-generation VQ through transformers' JanusVQVAE: 16x16, 16384 codes x 8 "
                f"dims; {JANUS_NOTE}"))
register_release(Release(
    name="janus-pro-7b-vq", family="janus", file="janus-pro-7b/pytorch_model.bin.index.json",
    hub_repo="deepseek-ai/Janus-Pro-7B", hub_filename="pytorch_model.bin.index.json", released=JANUS_CONFIG,
    license="MIT (code); DeepSeek Model License (weights)",
    description=f"Janus-Pro-7B's image-generation VQ through transformers' JanusVQVAE: 16x16, 16384 codes x 8 "
                f"dims; {JANUS_NOTE} (only the shard(s) holding it are needed)"))
register_release(Release(
    name="janus-1.3b-vq", family="janus", file="janus-1.3b/pytorch_model.bin", hub_repo="deepseek-ai/Janus-1.3B",
    hub_filename="pytorch_model.bin", released=JANUS_CONFIG, license="MIT (code); DeepSeek Model License (weights)",
    description=f"Janus-1.3B's image-generation VQ through transformers' JanusVQVAE: 16x16, 16384 codes x 8 dims; "
                f"{JANUS_NOTE}"))
