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
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from test_loaders_tokbench import build_release, rewrite
from tokbench.cli import main
from tokbench.pipeline import RunConfig, run, run_name
from tokbench.report import load_report


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
    assert np.array_equal(c.get_arrays("ref", "ab12")["mu"], np.arange(4.0)) and c.get_json("ref", "ab12") == {"v": [1.0]}
