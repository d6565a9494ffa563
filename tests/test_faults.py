"""Fault injection (issue 15): damaged reports, caches, inputs and disks end in one line naming the file or
item and exit 2 (1 stays "regression"), never in a traceback, a poisoned cache or a mixed report folder.

Most cases run the CLI in-process (``tokbench.cli.main``) to stay fast; kills and concurrent builders use
forked child processes. Tests run as root, so a read-only folder is simulated by a regular file where a
folder is expected (chmod does not stop root)."""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from test_loaders_tokbench import build_release, rewrite
from tokbench.cli import main
from tokbench.pipeline import RunConfig, run, run_name
from tokbench.report import load_report

ROOT = Path(__file__).resolve().parent.parent


def cli(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        rc = main([str(a) for a in args])
    except SystemExit as e:  # argparse
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def quick_cfg(tmp: Path, **kw) -> RunConfig:
    base = dict(tokenizer="jpeg", suite="text-face", datasets=["package-images"], limit=2, resolutions=[256],
                metrics=["psnr"], quiet=True, out=str(tmp / "out"), cache_dir=str(tmp / "cache"))
    base.update(kw)
    return RunConfig(**base)


@pytest.fixture(scope="module")
def good_report(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("good")
    return Path(run(quick_cfg(tmp, name="good")).path)


# ------------------------------------------------------------------------------ 1. damaged reports


def _truncate(f: Path):
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


DAMAGE = {
    "manifest-truncated": ("manifest.json", _truncate),
    "manifest-not-utf8": ("manifest.json", lambda f: f.write_bytes(b'{"suite": "\xff\xfe"}')),
    "manifest-is-a-list": ("manifest.json", lambda f: f.write_text("[1, 2]")),
    "rows-truncated": ("rows.parquet", _truncate),
    "rows-zero-bytes": ("rows.parquet", lambda f: f.write_bytes(b"")),
    "rows-without-level": ("rows.parquet",
                           lambda f: pd.read_parquet(f).drop(columns=["level"]).to_parquet(f, index=False)),
    "summary-json-garbage": ("summary.json", lambda f: f.write_bytes(b"\x00garbage{")),
    "summary-csv-zero-bytes": ("summary.csv", lambda f: f.write_bytes(b"")),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_report_exits_2_naming_the_file(case, good_report, tmp_path, capsys):
    fname, damage = DAMAGE[case]
    bad = tmp_path / "bad"
    shutil.copytree(good_report, bad)
    damage(bad / fname)
    for args in (["report", bad], ["check", "--baseline", bad, "--candidate", good_report],
                 ["check", "--baseline", good_report, "--candidate", bad]):
        rc, _, err = cli(capsys, *args)
        assert rc == 2, (args, err)
        line = one_error(err)
        assert fname in line and "damaged" in line, line
    rc, _, err = cli(capsys, "check", "--baseline", good_report, "--candidate", good_report)
    assert rc == 0, err


def test_run_check_against_a_damaged_baseline_exits_2(good_report, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(good_report, bad)
    (bad / "manifest.json").write_text("[]")
    cfg = quick_cfg(good_report.parent.parent)
    rc, _, err = cli(capsys, "run", "-t", "jpeg", "-s", "text-face", "--data", "package-images", "--limit", 2,
                     "-r", 256, "--metrics", "psnr", "--quiet", "--out", tmp_path / "o", "--cache-dir", cfg.cache_dir,
                     "--check", bad)
    assert rc == 2 and "manifest.json" in one_error(err)


# ------------------------------------------------------------------------------ 2. decompression bombs


def png_bomb(path: Path, width: int = 50000, height: int = 50000):
    """A valid PNG signature and IHDR declaring a huge image, with almost no data (a decompression bomb)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def test_decompression_bomb_is_a_bad_item(tmp_path, capsys, monkeypatch):
    root = build_release(tmp_path / "TokBench")
    png_bomb(root / "images/text_data/ic13/img_2.png")
    args = ["run", "-t", "identity", "-s", "text-face", "-r", 256, "--metrics", "psnr", "--quiet",
            "--data", f"tokbench:{root}:ic13", "--out", tmp_path / "out", "--name", "r",
            "--cache-dir", tmp_path / "cache"]
    rc, _, err = cli(capsys, *args)
    line = one_error(err)
    assert rc == 2 and "img_2.png" in line and "2500000000 pixels" in line and "TOKBENCH_MAX_IMAGE_PIXELS" in line, line
    rc, _, err = cli(capsys, *args, "--skip-bad")
    assert rc == 0, err
    rep = load_report(tmp_path / "out" / "r")
    assert [i for i, _ in rep.manifest["skipped"]] == ["tokbench/ic13/img_2.png"]
    assert set(rep.rows["item"]) == {"ic13/img_1.png"}
    # the limit is the user's to change: lowered below a real image, that image is refused too
    monkeypatch.setenv("TOKBENCH_MAX_IMAGE_PIXELS", "100")
    from tokbench.data.items import BadInputError, read_image

    with pytest.raises(BadInputError, match=r"img_1.png: image declares 3072 pixels; the limit is 100 "):
        read_image(root / "images/text_data/ic13/img_1.png")


def test_imagenet_folder_bomb_is_skipped(tmp_path):
    from tokbench.data.imagenet import ImageFolder

    (tmp_path / "a").mkdir()
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "a" / "ok.png")
    png_bomb(tmp_path / "a" / "bomb.png")
    ds = ImageFolder(tmp_path, skip_bad=True)
    assert [i.id for i in ds.items] == ["a/ok.png"]
    assert ds.skipped and "bomb.png" in ds.skipped[0][1] and "TOKBENCH_MAX_IMAGE_PIXELS" in ds.skipped[0][1]


# ------------------------------------------------------------------------------ 4. lone surrogates


def test_lone_surrogate_in_annotation_is_a_bad_item(tmp_path, capsys):
    root = build_release(tmp_path / "TokBench")
    rewrite(root, "annotations/text_ic13.json", lambda d: d[1]["annotations"][0].update(rec="ab\ud800"))
    args = ["run", "-t", "identity", "-s", "text-face", "-r", 256, "--metrics", "psnr", "--quiet",
            "--data", f"tokbench:{root}:ic13", "--out", tmp_path / "out", "--name", "r",
            "--cache-dir", tmp_path / "cache"]
    rc, _, err = cli(capsys, *args)
    line = one_error(err)
    assert rc == 2 and "img_2.png" in line and "valid Unicode" in line and "\\ud800" in line, line
    rc, _, err = cli(capsys, *args, "--skip-bad")
    assert rc == 0, err
    assert "skipped" in err and "ic13/img_2.png" in err  # annotation-level skips are printed too
    rep = load_report(tmp_path / "out" / "r")
    assert set(rep.rows["item"]) == {"ic13/img_1.png"} and rep.manifest["skipped"][0][0] == "tokbench/ic13/img_2.png"


# ------------------------------------------------------------------------------ 5. report names and units


def test_run_name_includes_the_checkpoint_digest(tmp_path):
    cfg = quick_cfg(tmp_path, checkpoint=str(tmp_path / "a.safetensors"))
    a = run_name(cfg, "vae", [256], "a" * 64)
    b = run_name(cfg, "vae", [256], "b" * 64)
    assert a != b and "ckpt-aaaaaaaaaaaa" in a
    assert run_name(quick_cfg(tmp_path), "vae", [256]) != a
    assert run_name(quick_cfg(tmp_path, dtype="bf16"), "vae", [256]) != run_name(quick_cfg(tmp_path), "vae", [256])


@pytest.mark.parametrize("kill_after", ["rows.parquet", "summary.json"])
def test_kill_between_report_files_leaves_the_old_report_whole(kill_after, good_report, tmp_path):
    folder = tmp_path / "good"
    shutil.copytree(good_report, folder)
    old = load_report(folder)
    new = load_report(folder)
    new.rows = new.rows.assign(PSNR=new.rows["PSNR"] + 1.0)  # another run's numbers
    new.manifest = {**new.manifest, "date": "another run"}
    pid = os.fork()
    if pid == 0:  # child: write the new report, killed by the test hook half-way
        try:
            os.environ["TOKBENCH_TEST_KILL_AFTER"] = kill_after
            new.write()
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    now = load_report(folder)
    assert now.manifest["date"] == old.manifest["date"]
    pd.testing.assert_frame_equal(now.rows, old.rows)
    new.write()  # without the hook the whole new report replaces the old one
    now = load_report(folder)
    assert now.manifest["date"] == "another run" and np.allclose(now.rows["PSNR"], old.rows["PSNR"] + 1.0)
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "rows.parquet", "summary.csv",
                                                        "summary.json"]


# ------------------------------------------------------------------------------ 8. concurrent builders

BUILD_LOG = "TOKBENCH_TEST_BUILD_LOG"


def _tiny_dataset():
    from tokbench.data.embedded.base import BuiltItem, EmbeddedDataset

    class Tiny(EmbeddedDataset):
        name = "faults-tiny"
        modality = "image"

        def generate(self):
            with open(os.environ[BUILD_LOG], "a") as f:
                f.write(f"{os.getpid()}\n")
            time.sleep(0.5)  # a build that takes a while: the others arrive meanwhile
            rng = np.random.default_rng(0)
            return [BuiltItem(f"im{i}", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)) for i in range(3)]

    return Tiny()


def test_concurrent_builders_build_once(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKBENCH_DATA_CACHE", str(tmp_path / "data"))
    monkeypatch.setenv(BUILD_LOG, str(tmp_path / "builds.log"))
    pids = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                ds = _tiny_dataset()
                code = 0 if len(ds.items) == 3 and all(it.load().shape == (1, 8, 8, 3) for it in ds.items) else 4
            finally:
                os._exit(code)
        pids.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]
    assert codes == [0, 0, 0, 0]
    assert len((tmp_path / "builds.log").read_text().split()) == 1  # built once; three waited
    folder = _tiny_dataset().folder()
    assert oct(folder.stat().st_mode & 0o777) == oct(0o777 & ~_umask())  # 10: follows the umask, not 0700


def _umask() -> int:
    m = os.umask(0o022)
    os.umask(m)
    return m


# ------------------------------------------------------------------------------ 3. cache integrity


def test_damaged_item_entries_are_recomputed_with_a_warning(tmp_path, capsys):
    first = run(quick_cfg(tmp_path))
    entries = sorted((tmp_path / "cache" / "items").rglob("*.json"))
    assert len(entries) == 2
    torn, edited = entries
    torn.write_bytes(torn.read_bytes()[:20])
    edited.write_text(edited.read_text().replace('"PSNR": ', '"PSNR": 1'))  # a plausible, wrong number
    capsys.readouterr()
    again = run(quick_cfg(tmp_path))
    err = capsys.readouterr().err
    assert f"cache entry {torn}" in err and f"cache entry {edited}" in err and "checksum mismatch" in err
    pd.testing.assert_frame_equal(again.rows, first.rows)
    assert again.manifest["items_computed"] == 2
    third = run(quick_cfg(tmp_path))  # the entries were replaced: now hits again
    assert third.manifest["items_cached"] == 2
    pd.testing.assert_frame_equal(third.rows, first.rows)


@pytest.mark.parametrize("damage", ["truncated", "edited", "wrong-structure"])
def test_damaged_cache_entries_are_misses(damage, tmp_path):
    from tokbench.cache import Cache

    warnings = []
    c = Cache(tmp_path, warn=warnings.append)
    c.put_arrays("ref", "ab12", {"mu": np.arange(4.0), "n": np.array(4)})
    c.put_json("ref", "ab12", {"v": [1.0, 2.0]})
    npz, js = c._path("ref", "ab12", ".npz"), c._path("ref", "ab12", ".json")
    if damage == "truncated":
        npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
        js.write_bytes(js.read_bytes()[:10])
    elif damage == "edited":
        arrays = dict(np.load(npz))
        arrays["mu"] = arrays["mu"] + 1
        np.savez(npz, **arrays)
        js.write_text(js.read_text().replace("2.0", "3.0"))
    else:
        np.savez(npz, other=np.zeros(2))
        js.write_text('["not", "an", "entry"]')
    assert c.get_arrays("ref", "ab12") is None and c.get_json("ref", "ab12") is None
    assert len(warnings) == 2 and str(npz) in warnings[0] and str(js) in warnings[1]
    c.put_arrays("ref", "ab12", {"mu": np.arange(4.0)})
    c.put_json("ref", "ab12", {"v": [1.0]})
    assert np.array_equal(c.get_arrays("ref", "ab12")["mu"], np.arange(4.0))
    assert c.get_json("ref", "ab12") == {"v": [1.0]}


# ------------------------------------------------------------------------------ 6 + 10. tokenizer errors, plugins

PLUGIN = '''
import torch
from tokbench.tokenizers import Encoded, Tokenizer, TokenizerSpec, register_tokenizer


class Faulty(Tokenizer):
    """Identity for its first call, then fails the way ``mode`` says."""

    def __init__(self, spec, mode):
        super().__init__(spec)
        self.mode, self.calls = mode, 0

    def encode(self, x):
        self.calls += 1
        if self.calls > 1 and self.mode == "raise":
            raise RuntimeError("shape '[1, 4, 32]' is invalid for input of size 96")
        if self.calls > 1 and self.mode == "oom":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return Encoded(bits=torch.full((x.shape[0],), 8.0), latents=x)

    def decode(self, enc):
        return None if self.calls > 1 and self.mode == "nothing" else enc.latents


@register_tokenizer(TokenizerSpec(name="faulty", family="test", kind="baseline"))
def faulty(spec, *, mode="raise"):
    return Faulty(spec, mode)
'''


@pytest.fixture(scope="module")
def plugin_file(tmp_path_factory) -> Path:
    f = tmp_path_factory.mktemp("plugin") / "faults_plugin.py"
    f.write_text(PLUGIN)
    return f


@pytest.mark.parametrize("mode,needle", [
    ("raise", "RuntimeError: shape '[1, 4, 32]' is invalid for input of size 96"),
    ("oom", "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB; "
            "try a smaller --batch-size (this call had 2)"),
    ("nothing", "returned NoneType, not a tensor"),
])
def test_tokenizer_errors_name_tokenizer_and_item(mode, needle, plugin_file, tmp_path, capsys):
    import tokbench.builtin_suites  # noqa: F401  (registers package-images)
    from tokbench.data.dataset import get_dataset

    ids = [it.id for it in get_dataset("package-images").items[:4]]
    rc, _, err = cli(capsys, "run", "--plugin", plugin_file, "-t", f"faulty:mode={mode}", "-s", "text-face",
                     "--data", "package-images", "--limit", 4, "--batch-size", 2, "-r", 256, "--metrics", "psnr",
                     "--quiet", "--out", tmp_path / "out", "--cache-dir", tmp_path / "cache")
    line = one_error(err)
    assert rc == 2 and f"tokenizer faulty:mode={mode}" in line and needle in line, line
    assert ids[2] in line  # the second batch (items 3-4) failed ...
    assert len(list((tmp_path / "cache" / "items").rglob("*.json"))) == 2  # ... the first one is kept


def test_plugin_option_and_entry_point_group(plugin_file, tmp_path, capsys, monkeypatch):
    rc, out, err = cli(capsys, "list", "--plugin", plugin_file)
    assert rc == 0 and "faulty" in out, err
    rc, _, err = cli(capsys, "list", "--plugin", "no_such_tokbench_plugin")
    assert rc == 2 and "--plugin no_such_tokbench_plugin: cannot import it" in one_error(err)
    # an installed package declares the group; importing its module registers the tokenizer
    site = tmp_path / "site"
    (site / "faults_ep_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "faults_ep_plugin-0.1.dist-info" / "METADATA").write_text("Name: faults-ep-plugin\nVersion: 0.1\n")
    (site / "faults_ep_plugin-0.1.dist-info" / "entry_points.txt").write_text(
        "[tokbench.tokenizers]\nfaulty-ep = faults_ep_plugin\n")
    (site / "faults_ep_plugin.py").write_text(PLUGIN.replace('name="faulty"', 'name="faulty-ep"'))
    monkeypatch.syspath_prepend(str(site))
    from tokbench.tokenizers.registry import create_tokenizer, load_entry_point_plugins

    assert "faulty-ep" in load_entry_point_plugins()
    assert create_tokenizer("faulty-ep").spec.name == "faulty-ep"


# ------------------------------------------------------------------------------ 7. unusable output folders


@pytest.mark.parametrize("where", ["out-is-a-file", "out-under-a-file", "out-read-only", "cache-is-a-file"])
def test_unusable_folders_are_refused_before_any_work(where, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    out, cache = tmp_path / "out", tmp_path / "cache"
    if where == "out-is-a-file":
        out = tmp_path / "file"
    elif where == "out-under-a-file":
        out = tmp_path / "file" / "reports"
    elif where == "out-read-only":
        out = Path("/sys/tokbench-faults")  # read-only even for root (sysfs); chmod would not stop root
        try:
            out.mkdir()
            out.rmdir()
            pytest.skip("no read-only folder available on this machine")
        except OSError:
            pass
    else:
        cache = tmp_path / "file"
    t0 = time.perf_counter()
    rc, _, err = cli(capsys, "run", "-t", "jpeg", "-s", "text-face", "--data", "package-images", "--limit", 2,
                     "-r", 256, "--metrics", "psnr", "--quiet", "--out", out, "--cache-dir", cache)
    line = one_error(err)
    assert rc == 2 and str(out if "out" in where else cache) in line, line
    assert not (tmp_path / "cache" / "items").exists()  # nothing was computed


def fresh_python(code: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """A fresh interpreter (forking this multi-threaded test process could deadlock the child)."""
    full = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **(env or {}))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, cwd=ROOT,
                          timeout=timeout)


def test_disk_full_while_writing_a_cache_entry(tmp_path):
    """RLIMIT_FSIZE (soft limit, restored after) makes writes past a size fail with EFBIG, as a full disk
    fails with ENOSPC; no mount needed."""
    import resource

    from tokbench.cache import Cache
    from tokbench.errors import TokbenchError

    c = Cache(tmp_path / "cache")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, hard))
        with pytest.raises(TokbenchError, match=r"cannot write cache entry .*items.*File too large.*--cache-dir"):
            c.put_json("items", "ab" * 32, {"rows": [{"PSNR": 30.0}] * 20})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)
    assert not list((tmp_path / "cache").rglob("*.tmp"))  # the torn temporary file is removed


@pytest.mark.parametrize("where", ["report"])
def test_disk_full_mid_run_is_one_line(where, tmp_path):
    """The report cannot be written (items already cached): one line, no half-written folder."""
    if where == "report":
        run(quick_cfg(tmp_path))  # items cached; only the report is left to write
    limit = 1024 if where == "report" else 64
    args = ["run", "-t", "jpeg", "-s", "text-face", "--data", "package-images", "--limit", "2", "-r", "256",
            "--metrics", "psnr", "--quiet", "--out", str(tmp_path / "full"), "--cache-dir", str(tmp_path / "cache"),
            "--name", "r"]
    r = fresh_python("import resource, signal, sys\n"
                     "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
                     f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
                     f"from tokbench.cli import main\nsys.exit(main({args!r}))\n")
    assert r.returncode == 2, r.stderr[-2000:]
    line = one_error(r.stderr)
    assert "File too large" in line, line
    if where == "report":
        assert "cannot write the report" in line and "rerun" in line, line
    else:
        assert "cannot write cache entry" in line and str(tmp_path / "cache" / "items") in line, line
    assert not (tmp_path / "full" / "r").exists()  # no half-written report folder


# ------------------------------------------------------------------------------ 10. smaller items


def test_skip_bad_run_that_scores_nothing_fails(tmp_path, capsys):
    root = build_release(tmp_path / "TokBench")
    for name in ("img_1.png", "img_2.png"):
        (root / "images/text_data/ic13" / name).write_bytes(b"\x89PNG\r\n\x1a\n broken")
    rc, _, err = cli(capsys, "run", "-t", "identity", "-s", "text-face", "-r", 256, "--metrics", "psnr", "--quiet",
                     "--data", f"tokbench:{root}:ic13", "--out", tmp_path / "out", "--name", "r",
                     "--cache-dir", tmp_path / "cache", "--skip-bad")
    line = one_error(err)
    assert rc == 2 and "nothing was scored: 2 item(s) skipped" in line and "img_1.png" in line, line
    assert len(load_report(tmp_path / "out" / "r").manifest["skipped"]) == 2  # the list is still written


def test_summary_json_has_no_home_paths(good_report, tmp_path, monkeypatch):
    rep = load_report(good_report)
    home = str(Path.home())
    why = f"weights missing: {home}/.cache/tokbench/pt_inception.pth"
    rep.manifest = {**rep.manifest, "unavailable": {"rfid": why}}
    rep.path = tmp_path / "r"
    rep.write()
    text = (tmp_path / "r" / "summary.json").read_text()
    assert home not in text and "~/.cache/tokbench/pt_inception.pth" in text
    assert home in (tmp_path / "r" / "manifest.json").read_text()  # recorded once, in the manifest


def test_run_destroys_the_process_group_it_created(tmp_path):
    """Two ranks (gloo, fresh interpreters): after run() returns, no process group is left for exit."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run(quick_cfg(tmp_path, limit=4))  # warm the cache; the ranks then only read it
    code = ("import sys, torch.distributed as dist\nfrom tokbench.pipeline import RunConfig, run\n"
            f"rep = run(RunConfig(**{dict(vars(quick_cfg(tmp_path, limit=4, name='dist')))!r}))\n"
            "sys.exit(0 if len(rep.rows) == 4 and not dist.is_initialized() else 5)\n")
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(ROOT), MASTER_ADDR="127.0.0.1",
                                       MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2"))
             for rank in range(2)]
    codes = [p.wait(timeout=600) for p in procs]
    assert codes == [0, 0], [p.stderr.read()[-1500:] for p in procs]


# ------------------------------------------------------------------------------ 9. strict checkpoints


@pytest.mark.parametrize("damage", ["missing", "shape"])
def test_diffusers_checkpoint_must_match_exactly(damage, tmp_path):
    pytest.importorskip("diffusers")
    import torch
    from safetensors.torch import load_file, save_file

    from tiny_models import make_tiny_diffusers
    from tokbench.errors import BadInputError
    from tokbench.tokenizers.registry import create_tokenizer

    folder = make_tiny_diffusers("sdxl-vae", tmp_path)
    weights = next(folder.glob("*.safetensors"))
    state = load_file(weights)
    if damage == "missing":
        del state["decoder.conv_in.bias"]
    else:
        state["decoder.conv_in.bias"] = torch.zeros(state["decoder.conv_in.bias"].numel() + 1)
    save_file(state, weights)
    with pytest.raises(BadInputError) as e:
        create_tokenizer("sdxl-vae", checkpoint=str(folder))
    msg = str(e.value)
    assert "\n" not in msg and str(weights) in msg and "decoder.conv_in.bias" in msg
    assert ("missing decoder.conv_in.bias" in msg) if damage == "missing" else ("wrong shape" in msg and "(17,)" in msg)


def test_cosmos_files_of_another_variant_are_refused(tmp_path):
    from tiny_models import make_tiny_cosmos
    from tokbench.errors import BadInputError, UnsafeCheckpointError
    from tokbench.tokenizers.registry import create_tokenizer

    other = make_tiny_cosmos("cosmos-ci16x16", tmp_path)  # 16x16 files offered as the 8x8 tokenizer
    with pytest.raises(UnsafeCheckpointError, match="allow-unsafe-checkpoint"):
        create_tokenizer("cosmos-ci8x8", checkpoint=str(other))
    with pytest.raises(BadInputError, match=r"gives a code of shape \(1, 16, 1, 1\).*expects \(1, 16, 2, 2\)"):
        create_tokenizer("cosmos-ci8x8", checkpoint=str(other), allow_unsafe=True)
    assert create_tokenizer("cosmos-ci16x16", checkpoint=str(other), allow_unsafe=True).spec.spatial_factor == 16


def test_i3d_torchscript_needs_the_opt_in_or_a_pinned_sha256(tmp_path, monkeypatch):
    import torch

    from tokbench.data.dataset import sha256_file
    from tokbench.errors import UnsafeCheckpointError
    from tokbench.features.i3d import StyleGANVI3D

    f = tmp_path / "i3d_torchscript.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch deprecates jit.script/save; the format is fixed
        torch.jit.save(torch.jit.script(torch.nn.Identity()), str(f))
    monkeypatch.delenv("TOKBENCH_ALLOW_UNSAFE_CHECKPOINT", raising=False)
    with pytest.raises(UnsafeCheckpointError, match=f"TorchScript program.*allow-unsafe-checkpoint.*{sha256_file(f)}"):
        StyleGANVI3D(f)
    assert StyleGANVI3D(f, allow_unsafe=True).model is not None
    monkeypatch.setenv("TOKBENCH_TRUSTED_TORCHSCRIPT", sha256_file(f))  # a known-good digest stands in
    assert StyleGANVI3D(f).model is not None
