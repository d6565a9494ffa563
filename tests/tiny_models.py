"""Tiny randomly initialised checkpoints in the real on-disk formats, for tests that need a tokenizer folder.

* ``make_tiny_diffusers(name, directory)``: a diffusers folder (config.json + safetensors) for the registered
  tokenizer ``name`` (e.g. "sd-vae-ft-ema", "wan2.1-vae", "dc-ae-f64c128-in"), with that model's real
  spatial / temporal factors and latent channels but a few channels per layer.
* ``make_tiny_cosmos(name, directory)``: ``encoder.jit`` + ``decoder.jit`` for a Cosmos tokenizer (e.g.
  "cosmos-dv4x8x8"): scripted modules with the upstream call signatures (encoder returns ``(latent, extra)`` or
  ``(indices, codes, loss)``, the decoder takes latents or indices), the variant's factors and causal frame rule.

Both return the folder to pass as ``checkpoint=`` (or ``--checkpoint``); Cosmos also needs ``allow_unsafe=True``
(``--allow-unsafe-checkpoint``). Weights are seeded, so a folder is the same on every call.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch
from torch import nn


def isolate_caches(monkeypatch, root: Path, offline: bool = True) -> None:
    """Point every cache tokbench, torch and Hugging Face use into ``root`` (and go offline), so a test neither
    reads weights that happen to be on the machine nor writes outside its tmp dir."""
    root = Path(root)
    for var, sub in (("HOME", "home"), ("XDG_CACHE_HOME", "xdg"), ("TOKBENCH_CACHE", "tokbench"),
                     ("TORCH_HOME", "torch"), ("HF_HOME", "hf")):
        monkeypatch.setenv(var, str(root / sub))
    monkeypatch.delenv("TOKBENCH_WEIGHTS", raising=False)
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    try:  # huggingface_hub reads its cache location once, at import
        import huggingface_hub.constants as hf

        monkeypatch.setattr(hf, "HF_HOME", str(root / "hf"))
        monkeypatch.setattr(hf, "HF_HUB_CACHE", str(root / "hf" / "hub"))
        monkeypatch.setattr(hf, "HF_HUB_OFFLINE", offline)
    except ImportError:
        pass


# ---------------------------------------------------------------- diffusers


def _dc_config(factor: int, latent: int) -> dict:
    n = int(math.log2(factor)) + 1  # every block after the first halves the side
    types = ("ResBlock",) * (n - 1) + ("EfficientViTBlock",)
    scales = ((),) * (n - 1) + ((5,),)
    channels = (8,) * (n - 1) + (16,)
    return dict(latent_channels=latent, attention_head_dim=8, encoder_block_types=types, decoder_block_types=types,
                encoder_block_out_channels=channels, decoder_block_out_channels=channels,
                encoder_layers_per_block=(1,) * n, decoder_layers_per_block=(1,) * n,
                encoder_qkv_multiscales=scales, decoder_qkv_multiscales=scales,
                encoder_out_shortcut=False, decoder_in_shortcut=False)


def tiny_diffusers_config(name: str, timestep_conditioning: bool = False) -> tuple[str, dict]:
    """(diffusers class name, constructor kwargs) of the tiny stand-in for tokenizer ``name``."""
    from tokbench.tokenizers.diffusers_vae import SOURCES
    from tokbench.tokenizers.registry import get_entry

    spec = get_entry(name).spec
    cls = SOURCES[spec.name].cls
    c = spec.latent_channels
    if cls == "AutoencoderKL":
        return cls, dict(block_out_channels=(8, 16, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=1, norm_num_groups=4,
                         latent_channels=c, sample_size=32)
    if cls == "AutoencoderDC":
        return cls, _dc_config(spec.spatial_factor, c)
    if cls == "AutoencoderKLCogVideoX":
        return cls, dict(down_block_types=("CogVideoXDownBlock3D",) * 4, up_block_types=("CogVideoXUpBlock3D",) * 4,
                         block_out_channels=(8, 8, 8, 8), latent_channels=c, layers_per_block=1, norm_num_groups=2,
                         temporal_compression_ratio=4, sample_height=32, sample_width=32)
    if cls == "AutoencoderKLHunyuanVideo":
        return cls, dict(latent_channels=c, block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=2)
    if cls == "AutoencoderKLWan" and spec.spatial_factor == 16:  # Wan 2.2: 2x2 patchify + residual blocks
        return cls, dict(base_dim=8, decoder_base_dim=8, z_dim=c, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                         temperal_downsample=[False, True, True], is_residual=True, patch_size=2,
                         in_channels=12, out_channels=12, scale_factor_spatial=16, latents_mean=[0.0] * c,
                         latents_std=[1.0] * c)
    if cls == "AutoencoderKLWan":
        return cls, dict(base_dim=4, z_dim=c, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                         temperal_downsample=[False, True, True])
    if cls == "AutoencoderKLQwenImage":
        return cls, dict(base_dim=4, z_dim=c, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                         temperal_downsample=[False, True, True])
    if cls == "AutoencoderKLFlux2":
        return cls, dict(block_out_channels=(8, 16, 16, 16), layers_per_block=1, norm_num_groups=4,
                         latent_channels=c, sample_size=32)
    if cls == "AutoencoderKLHunyuanVideo15":
        return cls, dict(latent_channels=c, block_out_channels=(8, 8, 16, 32, 64), layers_per_block=1)
    if cls == "AutoencoderKLLTXVideo":
        return cls, dict(latent_channels=c, block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
                         layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1, 1),
                         timestep_conditioning=timestep_conditioning)
    if cls == "AutoencoderKLMochi":
        return cls, dict(encoder_block_out_channels=(32, 32, 32, 32), decoder_block_out_channels=(32, 32, 32, 32),
                         latent_channels=c, layers_per_block=(1, 1, 1, 1, 1), add_attention_block=(False,) * 5)
    raise KeyError(f"no tiny config for {cls}")


def make_tiny_diffusers(name: str, directory: str | Path, seed: int = 0, timestep_conditioning: bool = False,
                        subfolder: str | None = None, folder_name: str | None = None) -> Path:
    """Write a tiny random diffusers model for tokenizer ``name`` to ``directory/<folder_name or name>
    [/subfolder]``; returns the folder to pass as the checkpoint (a pipeline-like snapshot when ``subfolder``)."""
    import diffusers

    cls, kwargs = tiny_diffusers_config(name, timestep_conditioning)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = getattr(diffusers, cls)(**kwargs)
    folder = Path(directory) / (folder_name or name)
    model.save_pretrained(folder / subfolder if subfolder else folder)
    return folder


# ---------------------------------------------------------------- Cosmos (TorchScript)


class _FSQ(nn.Module):
    """Finite scalar quantisation with Cosmos' levels (8,8,8,5,5,5): codes in [-1, 1], mixed-radix indices."""

    def __init__(self, levels=(8, 8, 8, 5, 5, 5)):
        super().__init__()
        self.register_buffer("levels", torch.tensor(levels, dtype=torch.int64))
        basis = torch.cumprod(torch.tensor((1,) + tuple(levels[:-1]), dtype=torch.int64), 0)
        self.register_buffer("basis", basis)

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 6, ...) -> indices (B, ...) and codes (B, 6, ...)."""
        last = z.float().movedim(1, -1)
        digits = torch.round((torch.tanh(last) + 1) / 2 * (self.levels - 1)).to(torch.int64)
        indices = (digits * self.basis).sum(-1)
        return indices, (digits.float() / (self.levels - 1) * 2 - 1).movedim(-1, 1).to(z.dtype)

    def codes(self, indices: torch.Tensor) -> torch.Tensor:
        digits = (indices.unsqueeze(-1) // self.basis) % self.levels
        return (digits.float() / (self.levels - 1) * 2 - 1).movedim(-1, 1)


class TinyCosmosVideoEncoder(nn.Module):
    """Causal: frame 0 alone, then groups of ``temporal`` frames, each patch ``spatial`` x ``spatial`` projected."""

    def __init__(self, temporal: int, spatial: int, channels: int, discrete: bool):
        super().__init__()
        self.discrete = discrete
        self.first = nn.Conv3d(3, channels, (1, spatial, spatial), stride=(1, spatial, spatial))
        self.rest = nn.Conv3d(3, channels, (temporal, spatial, spatial), stride=(temporal, spatial, spatial))
        self.fsq = _FSQ()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self.first(x[:, :, :1])
        if x.shape[2] > 1:
            z = torch.cat([z, self.rest(x[:, :, 1:])], 2)
        if self.discrete:
            indices, codes = self.fsq.quantize(z)
            return indices, codes, z.new_zeros(())
        return z, z.new_zeros(()), z.new_zeros(())


class TinyCosmosVideoDecoder(nn.Module):
    def __init__(self, temporal: int, spatial: int, channels: int, discrete: bool):
        super().__init__()
        self.temporal, self.spatial, self.discrete = temporal, spatial, discrete
        self.proj = nn.Conv3d(channels, 3, 1)
        self.fsq = _FSQ()

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        if self.discrete:
            z = self.fsq.codes(code).to(self.proj.weight.dtype)
        else:
            z = code
        y = self.proj(z)
        y = y.repeat_interleave(self.temporal, 2).repeat_interleave(self.spatial, 3).repeat_interleave(self.spatial, 4)
        return torch.tanh(y[:, :, self.temporal - 1:])


class TinyCosmosImageEncoder(nn.Module):
    def __init__(self, spatial: int, channels: int, discrete: bool):
        super().__init__()
        self.discrete = discrete
        self.proj = nn.Conv2d(3, channels, spatial, stride=spatial)
        self.fsq = _FSQ()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self.proj(x)
        if self.discrete:
            indices, codes = self.fsq.quantize(z)
            return indices, codes, z.new_zeros(())
        return z, z.new_zeros(()), z.new_zeros(())


class TinyCosmosImageDecoder(nn.Module):
    def __init__(self, spatial: int, channels: int, discrete: bool):
        super().__init__()
        self.spatial, self.discrete = spatial, discrete
        self.proj = nn.Conv2d(channels, 3, 1)
        self.fsq = _FSQ()

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        if self.discrete:
            z = self.fsq.codes(code).to(self.proj.weight.dtype)
        else:
            z = code
        y = self.proj(z)
        return torch.tanh(y.repeat_interleave(self.spatial, 2).repeat_interleave(self.spatial, 3))


def make_tiny_cosmos(name: str, directory: str | Path, seed: int = 0, folder_name: str | None = None) -> Path:
    """Write scripted tiny ``encoder.jit`` / ``decoder.jit`` for Cosmos tokenizer ``name`` into
    ``directory/<folder_name or name>``; returns that folder."""
    from tokbench.tokenizers.registry import get_entry

    spec = get_entry(name).spec
    discrete = spec.kind == "discrete"
    channels = 6 if discrete else spec.latent_channels
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if "video" in spec.modalities:
            enc = TinyCosmosVideoEncoder(spec.temporal_factor, spec.spatial_factor, channels, discrete)
            dec = TinyCosmosVideoDecoder(spec.temporal_factor, spec.spatial_factor, channels, discrete)
        else:
            enc = TinyCosmosImageEncoder(spec.spatial_factor, channels, discrete)
            dec = TinyCosmosImageDecoder(spec.spatial_factor, channels, discrete)
        if discrete:  # larger projections so random codes spread over the FSQ levels
            for p in enc.parameters():
                p.data.mul_(4)
    folder = Path(directory) / (folder_name or spec.name)
    folder.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # torch >= 2.10 deprecates TorchScript; Cosmos ships it
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(enc.eval()).save(str(folder / "encoder.jit"))
        torch.jit.script(dec.eval()).save(str(folder / "decoder.jit"))
    return folder


# ---------------------------------------------------------------- VidTok (upstream Lightning files)


def make_tiny_vidtok(name: str, path: Path, ch: int = 8, seed: int = 0, extra: dict | None = None,
                     drop: str | None = None) -> Path:
    """An upstream-layout VidTok Lightning file at ``path`` for entry ``name``: ``{"state_dict": ...}`` with the
    engine's ``encoder.`` / ``decoder.`` prefixes plus training ``loss.`` state, random weights at base width
    ``ch`` (the release's levels, latent channels and FSQ levels). ``extra`` adds keys, ``drop`` removes one."""
    import diffusers

    from tokbench.models.vidtok import RELEASES

    torch.manual_seed(seed)
    state = diffusers.AutoencoderVidTok(**RELEASES[name].diffusers_config(ch=ch)).state_dict()
    with torch.no_grad():  # mix factors and norm weights away from their constant init
        for value in state.values():
            value.add_(0.05 * torch.randn(value.shape))
    state = {**state, "loss.logvar": torch.zeros(()), "loss.discriminator.main.0.weight": torch.zeros(4, 3, 3, 3),
             **(extra or {})}
    if drop:
        del state[drop]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "global_step": 7}, path)
    return path
