"""Every diffusers family and Cosmos through the real run path: a tiny random model per model class is written
in its on-disk format, then run on the image suite (``text-face``) or the video suite (``video``) with
``--limit 4`` on CPU, and the report is checked item by item.

Why it is built this way:

* One registry entry per model class (the adapters are shared within a class; per-entry specs, loading and
  numerics are covered in test_diffusers_vae.py and test_cosmos.py).
* Small evaluation sizes (64 for images, short side 64 for videos) and short clips that satisfy each family's
  frame rule (9 = 1 + 4k = 1 + 8k; 13 = 1 + 6k for Mochi) keep the tokenizer side small on 2 cores; the real
  sizes (256+, 17/49-frame clips) are exercised by test_diffusers_vae.py, test_cosmos.py and test_omni_run.py.
  Most of the remaining time is the suites' own metrics at the originals' resolution (SSIM on the 720p video
  clips above all), the same work for every family.
* One TOKBENCH_CACHE for the module: the embedded datasets are built once and the reference side (OCR and face
  embeddings of the originals) is computed by the first run and reused by the rest.
* The expected rate is computed here from the spec and the geometry (latent elements x latent_bits, or tokens x
  log2(codebook), over the pixels the tokenizer coded), not read back from the harness.
* One family goes through ``python -m tokbench run`` (with ``--allow-unsafe-checkpoint``, as Cosmos needs);
  the rest call ``tokbench.pipeline.run`` in process (no interpreter start per family).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers")

from tiny_models import isolate_caches, make_tiny_cosmos, make_tiny_diffusers, make_tiny_vidtok  # noqa: E402
from tokbench.data.dataset import get_dataset  # noqa: E402
from tokbench.pipeline import RunConfig, run  # noqa: E402
from tokbench.protocols import DEFAULT_PROTOCOL, PROTOCOLS  # noqa: E402
from tokbench.report import load_report  # noqa: E402
from tokbench.suites import get_suite  # noqa: E402
from tokbench.tokenizers.registry import get_entry  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 4
IMAGE_SIZE = 64
VIDEO_SHORT_SIDE = 64

# (registry name, clip frames); one entry per model class
IMAGE_FAMILIES = ["sd-vae-ft-mse", "dc-ae-f32c32-in", "flux2-vae", "qwen-image-vae", "cosmos-ci8x8",
                  "cosmos-di16x16"]
VIDEO_FAMILIES = [("cogvideox-vae", 9), ("hunyuanvideo-vae", 9), ("hunyuanvideo1.5-vae", 9), ("wan2.1-vae", 9),
                  ("wan2.2-vae", 9), ("ltx-video-vae", 9),
                  ("mochi-vae", 13), ("cosmos-cv4x8x8", 9), ("cosmos-dv8x16x16", 9),
                  ("vidtok-fsq-causal-488-32768-v1.1", 9)]
CLI_FAMILY = "cosmos-di16x16"  # through the command line, with --allow-unsafe-checkpoint


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Isolated caches shared by every run in the module (so reference work is done once)."""
    root = tmp_path_factory.mktemp("families")
    mp = pytest.MonkeyPatch()
    isolate_caches(mp, root / "caches")
    yield root
    mp.undo()


def is_cosmos(name: str) -> bool:
    return get_entry(name).spec.family == "cosmos-jit"


def build_model(name: str, directory: Path) -> Path:
    if get_entry(name).spec.family == "vidtok":  # an upstream Lightning file, not a folder
        return make_tiny_vidtok(name, directory / f"{name}.ckpt")
    return make_tiny_cosmos(name, directory) if is_cosmos(name) else make_tiny_diffusers(name, directory)


# ---------------------------------------------------------------- expected values, from spec + geometry


def bits_per_latent_position(spec) -> float:
    """Bits one spatial-temporal latent position costs: channels x latent_bits, or log2(codebook) per token."""
    if spec.kind == "discrete":
        return math.log2(spec.codebook_size)
    return spec.latent_channels * spec.latent_bits


def round_up(x: int, m: int) -> int:
    return -(-x // m) * m


def expected_image_bpp(spec) -> float:
    side = round_up(IMAGE_SIZE, spec.spatial_multiple)  # square S x S canvas, padded to the spatial multiple
    latent = (side // spec.spatial_factor) ** 2
    return latent * bits_per_latent_position(spec) / side ** 2


def video_info(item) -> tuple[int, int, int]:
    """(height, width, frames) of a video item read from its container (no decoding)."""
    import av

    with av.open(str(item.path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for packet in container.demux(stream) if packet.size)
        return stream.height, stream.width, frames


def expected_video_bpp(spec, height: int, width: int, frames: int, clip: int) -> float:
    """Short side to 64, canvas padded to the protocol's multiple and the spec's; independent clips of ``clip``
    frames, a short last clip padded up to the frame rule; causal latents have 1 + (T - 1) / factor frames."""
    assert spec.causal_first_frame
    if height <= width:
        fit_h, fit_w = VIDEO_SHORT_SIDE, round(width * VIDEO_SHORT_SIDE / height)
    else:
        fit_h, fit_w = round(height * VIDEO_SHORT_SIDE / width), VIDEO_SHORT_SIDE
    m = math.lcm(PROTOCOLS.get(DEFAULT_PROTOCOL).video_pad_multiple, spec.spatial_multiple)
    canvas_h, canvas_w = round_up(fit_h, m), round_up(fit_w, m)
    bits = coded = 0.0
    for start in range(0, frames, clip):
        length = min(clip, frames - start)
        length = 1 + round_up(length - 1, spec.temporal_factor)
        latent_frames = 1 + (length - 1) // spec.temporal_factor
        positions = latent_frames * (canvas_h // spec.spatial_factor) * (canvas_w // spec.spatial_factor)
        bits += positions * bits_per_latent_position(spec)
        coded += length * canvas_h * canvas_w
    return bits / coded


def expected_sha256(name: str, folder: Path) -> str:
    """What the manifest must name: Cosmos both TorchScript files; diffusers the folder's config + weights."""
    def file_sha(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    if folder.is_file():  # a single checkpoint file (VidTok)
        return file_sha(folder)
    if is_cosmos(name):
        return f"encoder.jit:{file_sha(folder / 'encoder.jit')},decoder.jit:{file_sha(folder / 'decoder.jit')}"
    h = hashlib.sha256()
    for f in sorted(p for p in folder.iterdir() if p.name == "config.json" or p.suffix == ".safetensors"):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


# ---------------------------------------------------------------- the checks every family's report must pass


def check_report(report, name: str, folder: Path, suite_name: str, clip: int | None) -> None:
    spec = get_entry(name).spec
    suite = get_suite(suite_name)
    rows = report.rows
    level = "video" if suite.modality == "video" else "image"

    # one image/video row per item, for the first LIMIT items of every dataset of the suite
    items = {(ds, it.id): it for ds in suite.datasets for it in get_dataset(ds).items[:LIMIT]}
    top = rows[rows.level == level]
    assert sorted(zip(top.dataset, top.item)) == sorted(items), f"{name}: items scored"
    assert (top.resolution == (IMAGE_SIZE if level == "image" else VIDEO_SHORT_SIDE)).all()
    assert np.isfinite(top["PSNR"].to_numpy(float)).all() and (top["PSNR"] > 0).all()
    if level == "video":
        assert np.isfinite(top["TC-RMSE"].to_numpy(float)).all()
    for row in top.itertuples():
        if level == "image":
            want = expected_image_bpp(spec)
        else:
            want = expected_video_bpp(spec, *video_info(items[(row.dataset, row.item)]), clip)
        assert row.bpp == pytest.approx(want, rel=1e-12), f"{name}: bpp of {row.dataset}/{row.item}"

    # one word row per annotated word and one face row per annotated face, with scores
    for (ds, item_id), item in items.items():
        mine = rows[(rows.dataset == ds) & (rows["item"] == item_id)]
        assert (mine.level == "word").sum() == len(item.words), f"{name}: word rows of {ds}/{item_id}"
        assert (mine.level == "face").sum() == len(item.faces), f"{name}: face rows of {ds}/{item_id}"
    words, faces = rows[rows.level == "word"], rows[rows.level == "face"]
    assert len(words) > 0 and len(faces) > 0
    scored = words[words.excluded == ""]
    assert len(scored) > 0 and scored["T-ACC"].between(0, 1).all() and scored["T-NED"].between(0, 1).all()
    assert words.loc[words.excluded != "", "T-ACC"].isna().all()
    assert np.isfinite(faces["F-Sim"].to_numpy(float)).all() and faces["F-Sim"].between(-1, 1).all()

    # the manifest says what produced the numbers
    man = report.manifest
    tok = man["tokenizer"]
    assert tok["name"] == name and tok["spec"]["name"] == name
    assert tok["checkpoint_path"] == str(folder)
    assert tok["checkpoint_sha256"] == expected_sha256(name, folder)
    assert man["device"] == "cpu" and man["dtype"] == "fp32" and tok["device"] == "cpu" and tok["dtype"] == "float32"
    assert man["suite"] == suite_name and man["limit"] == LIMIT
    assert man["items_computed"] == len(items) and man["items_cached"] == 0
    assert set(man["metrics"]) == set(FAMILY_METRICS[suite_name]) and not man["unavailable"]
    if level == "video":
        assert man["harness"]["clip_frames"] == clip and "tcons" in man["metrics"]
    assert (report.path / "rows.parquet").is_file() and (report.path / "manifest.json").is_file()


# SSIM at the originals' resolution (720p video frames) dominated these runs and says nothing about the
# adapters; it is tested in test_pixel_metrics.py, so the family runs select the suites' other offline metrics
FAMILY_METRICS = {"text-face": ["text", "face", "psnr"], "video": ["text", "face", "psnr", "tcons"]}


def run_in_process(name: str, suite: str, clip: int | None, workspace: Path):
    folder = build_model(name, workspace / "models")
    report = run(RunConfig(tokenizer=name, suite=suite, checkpoint=str(folder), limit=LIMIT, clip_frames=clip,
                           resolutions=[IMAGE_SIZE if suite == "text-face" else VIDEO_SHORT_SIDE],
                           allow_unsafe_checkpoint=is_cosmos(name), out=str(workspace / "out"), quiet=True,
                           name=name, metrics=FAMILY_METRICS[suite], allow_unbinned_resolution=True))
    return report, folder


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("name", [n for n in IMAGE_FAMILIES if n != CLI_FAMILY])
def test_image_family_runs_text_face(name, workspace):
    report, folder = run_in_process(name, "text-face", None, workspace)
    check_report(report, name, folder, "text-face", None)


@pytest.mark.parametrize("name,clip", VIDEO_FAMILIES, ids=[n for n, _ in VIDEO_FAMILIES])
def test_video_family_runs_video_suite(name, clip, workspace):
    spec = get_entry(name).spec
    assert spec.valid_frames(clip) and clip < spec.default_clip_frames  # a short clip the family accepts
    report, folder = run_in_process(name, "video", clip, workspace)
    check_report(report, name, folder, "video", clip)


def test_cli_runs_a_cosmos_tokenizer(workspace):
    """``tokbench run`` end to end in a fresh interpreter: options parsed, report written, summary printed."""
    folder = build_model(CLI_FAMILY, workspace / "models-cli")
    out = workspace / "out-cli"
    env = dict(os.environ)  # the module's isolated caches (HOME, TOKBENCH_CACHE, HF_HOME ... all under tmp)
    args = [sys.executable, "-m", "tokbench", "run", "--tokenizer", CLI_FAMILY, "--checkpoint", str(folder),
            "--suite", "text-face", "--limit", str(LIMIT), "--resolution", str(IMAGE_SIZE), "--quiet",
            "--allow-unbinned-resolution", "--out", str(out), "--name", "cli", "--allow-unsafe-checkpoint", "--metrics", *FAMILY_METRICS["text-face"]]
    r = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"report written to {out / 'cli'}" in r.stdout
    report = load_report(out / "cli")
    check_report(report, CLI_FAMILY, folder, "text-face", None)
    assert report.manifest["config"]["allow_unsafe_checkpoint"] is True
    assert json.loads((out / "cli" / "manifest.json").read_text())["tokenizer"]["name"] == CLI_FAMILY
