"""tokbench check on real runs: JPEG through the pipeline on the 10 scikit-image pictures at 256 (PSNR/SSIM/bpp)."""
import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tokbench import check as C
from tokbench.pipeline import RunConfig, run
from tokbench.report import load_report


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Real reports: JPEG q50 twice (second from the cache), q30, and small runs that differ in one condition."""
    root = tmp_path_factory.mktemp("check-runs")
    cache = str(root / "cache")

    def go(name, quality, **kw):
        cfg = dict(tokenizer=f"jpeg:quality={quality}", suite="text-face", resolutions=[256],
                   datasets=["package-images"], out=str(root / "reports"), quiet=True, cache_dir=cache, name=name)
        cfg.update(kw)
        return run(RunConfig(**cfg)).path

    paths = {"q50": go("q50", 50), "q50-again": go("q50-again", 50), "q30": go("q30", 30),
             "q50-limit3": go("q50-limit3", 50, limit=3),
             "q50-limit3-suite-text": go("q50-limit3-suite-text", 50, limit=3, suite="text"),
             "q50-limit3-protocol-tokbench": go("q50-limit3-protocol-tokbench", 50, limit=3, protocol="tokbench",
                                                   allow_missing_evaluators=True)}
    return paths


def parse(argv):
    """The namespace the CLI would build, through the parser the lead wires in."""
    parser = argparse.ArgumentParser(prog="tokbench")
    sub = parser.add_subparsers(dest="command", required=True)
    C.add_check_parser(sub)
    return parser.parse_args(["check", *argv])


def cell(result, column, bin_name="all"):
    (c,) = [c for c in result.cells if c.metric.column == column and c.bin == bin_name]
    return c


def test_identical_runs_pass(runs, capsys):
    res = C.check_reports(runs["q50"], runs["q50-again"], metrics=["PSNR", "SSIM", "bpp"])
    assert res.exit_code == 0 and res.status == "pass"
    for c in res.cells:
        assert c.n == 10 and c.verdict == "pass"
        assert c.diff == 0.0 and c.ci_low == 0.0 and c.ci_high == 0.0
    assert load_report(runs["q50-again"]).manifest["items_cached"] == 10  # really a second run, from the cache
    args = parse(["--baseline", str(runs["q50"]), "--candidate", str(runs["q50-again"])])
    assert args.func(args) == 0
    assert "## tokbench check: pass" in capsys.readouterr().out


def test_jpeg_50_to_30_regresses_with_interval_excluding_zero(runs, tmp_path, capsys):
    md, junit = tmp_path / "check.md", tmp_path / "junit.xml"
    args = parse(["--baseline", str(runs["q50"]), "--candidate", str(runs["q30"]), "--metric", "PSNR",
                  "--metric", "SSIM", "--markdown", str(md), "--junit", str(junit)])
    assert C.cmd_check(args) == 1
    res = C.check_reports(runs["q50"], runs["q30"], metrics=["PSNR", "SSIM"])
    b, c = load_report(runs["q50"]).rows, load_report(runs["q30"]).rows
    for col in ("PSNR", "SSIM"):
        x = cell(res, col)
        assert x.verdict == "regress" and x.ci_high < -x.metric.max_drop < 0  # whole interval below -max_drop
        assert x.ci_low <= x.diff <= x.ci_high
        assert x.diff == pytest.approx((c[col] - b[col]).mean(), abs=1e-12)
        assert x.baseline == pytest.approx(b[col].mean()) and x.candidate == pytest.approx(c[col].mean())
    assert cell(res, "PSNR").diff < -0.5  # q30 loses more than half a dB on these pictures
    text = md.read_text()
    assert text == capsys.readouterr().out
    assert text.startswith("## tokbench check: REGRESSION (2 of 2 cells)")
    assert "| PSNR (dB) ↑ | 256 | image | all | 10 |" in text and "**REGRESS**" in text
    xml = junit.read_text()
    assert 'tests="2" failures="2"' in xml and xml.count("<failure") == 2


def test_difference_within_allowed_drop_passes(runs):
    res = C.check_reports(runs["q50"], runs["q30"], metrics=["PSNR:max_drop=2.0", "SSIM:max_drop=0.05"])
    assert res.exit_code == 0
    for col in ("PSNR", "SSIM"):
        x = cell(res, col)
        assert x.ci_high < 0  # the loss is real (interval excludes 0) ...
        assert x.ci_low > -x.metric.max_drop and x.verdict == "pass"  # ... but smaller than allowed


def test_lower_is_better_is_mirrored_and_improvements_pass(runs):
    # q30 spends fewer bits: bpp (lower is better) improves, and PSNR improves when the roles swap
    res = C.check_reports(runs["q50"], runs["q30"], metrics=["bpp"])
    assert cell(res, "bpp").verdict == "improve" and cell(res, "bpp").ci_high < 0 and res.exit_code == 0
    swapped = C.check_reports(runs["q30"], runs["q50"], metrics=["PSNR", "bpp"])
    assert cell(swapped, "PSNR").verdict == "improve" and cell(swapped, "bpp").verdict == "regress"
    assert swapped.exit_code == 1
    assert cell(swapped, "bpp").ci_low > 0  # more bits: the whole interval above +max_drop (0)
    assert "## tokbench check: REGRESSION (1 of 2 cells)" in swapped.markdown()


@pytest.mark.parametrize("other, expected", [
    ("q50-limit3-suite-text", "suite: baseline \"text-face\" != candidate \"text\""),
    ("q50-limit3-protocol-tokbench", "protocol.name: baseline \"offline\" != candidate \"tokbench\""),
    ("q50", "limit: baseline 3 != candidate null"),
])
def test_mismatch_is_refused_with_exit_2_naming_the_difference(runs, tmp_path, capsys, other, expected):
    md, junit = tmp_path / "refused.md", tmp_path / "refused.xml"
    args = parse(["-b", str(runs["q50-limit3"]), "-c", str(runs[other]), "--markdown", str(md),
                  "--junit", str(junit)])
    assert C.cmd_check(args) == 2
    err = capsys.readouterr().err
    assert "runs are not comparable" in err and expected in err
    assert md.read_text().startswith("## tokbench check: refused") and expected in md.read_text()
    assert 'errors="1"' in junit.read_text()
    with pytest.raises(C.CheckMismatchError) as e:
        C.check_reports(runs["q50-limit3"], runs[other])
    assert expected in e.value.differences


def test_same_seed_gives_byte_identical_outputs(runs, tmp_path):
    outputs = []
    for i, seed in enumerate(("7", "7", "8")):
        md, junit = tmp_path / f"{i}.md", tmp_path / f"{i}.xml"
        args = parse(["-b", str(runs["q50"]), "-c", str(runs["q30"]), "--seed", seed, "--bootstrap", "500",
                      "-m", "PSNR", "-m", "SSIM", "-m", "bpp", "--markdown", str(md), "--junit", str(junit)])
        assert C.cmd_check(args) == 1
        outputs.append((md.read_bytes(), junit.read_bytes()))
    assert outputs[0] == outputs[1]
    assert outputs[0][0] != outputs[2][0]  # another seed resamples differently ...
    assert b"seed 8" in outputs[2][0]
    for blob in outputs[0]:
        assert str(tmp_path).encode() not in blob and str(runs["q50"].parent).encode() not in blob  # no paths
    # ... and one cell's interval does not depend on which other metrics are checked
    alone = C.check_reports(runs["q50"], runs["q30"], metrics=["SSIM"], seed=7, n_resamples=500)
    together = C.check_reports(runs["q50"], runs["q30"], metrics=["PSNR", "SSIM"], seed=7, n_resamples=500)
    assert (cell(alone, "SSIM").ci_low, cell(alone, "SSIM").ci_high) == \
        (cell(together, "SSIM").ci_low, cell(together, "SSIM").ci_high)


def test_committed_baseline_file_round_trips(runs, tmp_path, capsys):
    out = tmp_path / "baseline.tokbench.json"
    args = parse(["--save-baseline", str(runs["q50"]), "--out", str(out)])
    assert C.cmd_check(args) == 0
    assert "10 instances" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert doc["format"] == "tokbench-baseline" and doc["manifest"]["suite"] == "text-face"
    assert doc["rows"]["columns"] == ["resolution", "dataset", "item", "level", "instance", "bin", "PSNR", "SSIM",
                                      "bpp"]
    assert len(doc["rows"]["values"]) == 10 and out.stat().st_size < 20_000  # small enough to commit
    assert "packages" not in doc["manifest"] and "timings" not in doc["manifest"]
    side, report = C.load_baseline(out), load_report(runs["q50"])
    pd.testing.assert_frame_equal(side.rows, report.rows[side.rows.columns.tolist()])  # exact float round trip
    from_file = C.check_reports(out, runs["q30"], metrics=["PSNR", "SSIM", "bpp"])
    from_folder = C.check_reports(runs["q50"], runs["q30"], metrics=["PSNR", "SSIM", "bpp"])
    assert [(c.diff, c.ci_low, c.ci_high, c.verdict) for c in from_file.cells] == \
        [(c.diff, c.ci_low, c.ci_high, c.verdict) for c in from_folder.cells]
    # a baseline made by older code (other evaluator settings, other data) is refused, naming both
    doc["manifest"]["metrics"]["psnr"]["convention"] = "per-channel PSNR"
    doc["manifest"]["datasets"][0]["content_sha256"] = "0" * 64
    stale = tmp_path / "stale.tokbench.json"
    stale.write_text(json.dumps(doc))
    with pytest.raises(C.CheckMismatchError) as e:
        C.check_reports(stale, runs["q30"])
    text = "\n".join(e.value.differences)
    assert "metrics.psnr.convention" in text and "datasets.package-images.content_sha256" in text
    # the file cannot be turned into a baseline again, and --save-baseline needs --out
    assert C.cmd_check(parse(["--save-baseline", str(out), "--out", str(tmp_path / "x.json")])) == 2
    assert C.cmd_check(parse(["--save-baseline", str(runs["q50"])])) == 2


def test_usage_errors_exit_2(runs, tmp_path, capsys):
    assert C.cmd_check(parse(["-b", str(runs["q50"])])) == 2
    assert C.cmd_check(parse(["-b", str(runs["q50"]), "-c", str(runs["q30"]), "-m", "PSNR:max_drop=-1"])) == 2
    assert C.cmd_check(parse(["-b", str(runs["q50"]), "-c", str(runs["q30"]), "-m", "NOPE"])) == 2
    assert "direction=higher" in capsys.readouterr().err
    assert C.cmd_check(parse(["-b", str(runs["q50"]), "-c", str(runs["q30"]), "-m", "NOPE:direction=lower"])) == 2
    assert "no values in the baseline" in capsys.readouterr().err
    assert C.cmd_check(parse(["-b", str(runs["q50"]), "-c", str(runs["q30"]), "--confidence", "95"])) == 2
    assert C.cmd_check(parse(["-b", str(tmp_path / "missing"), "-c", str(runs["q30"])])) == 2
    incomplete = tmp_path / "incomplete"
    shutil.copytree(runs["q30"], incomplete)
    (incomplete / "manifest.json").unlink()  # a killed run: no manifest, not a report
    assert C.cmd_check(parse(["-b", str(runs["q50"]), "-c", str(incomplete)])) == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_default_metrics_fall_back_to_psnr_ssim_without_text_or_faces(runs):
    res = C.check_reports(runs["q50"], runs["q30"])
    assert [c.metric.column for c in res.cells] == ["PSNR", "SSIM"]


def test_metric_spec_units_and_directions():
    acc = C.parse_metric_spec("T-ACC:max_drop=2.5")
    assert acc.max_drop == 2.5 and acc.unit.scale == 100 and acc.unit.higher_is_better and acc.label == "T-ACC (%)"
    assert C.parse_metric_spec("T-NED").max_drop == 1.0
    lp = C.parse_metric_spec("LPIPS:max_drop=0.01")
    assert not lp.unit.higher_is_better
    custom = C.parse_metric_spec("MyScore:direction=lower,max_drop=0.3")
    assert custom.max_drop == 0.3 and not custom.unit.higher_is_better
    assert C.judge(-4.0, -2.6, acc) == "regress" and C.judge(-3.0, -2.5, acc) == "pass"  # strict: touching passes
    assert C.judge(2.6, 4.0, acc) == "improve" and C.judge(0.1, 0.2, lp) == "regress"
    assert C.judge(-0.2, -0.1, lp) == "improve" and C.judge(-0.005, 0.01, lp) == "pass"


def test_known_directions_agree_with_the_metric_classes():
    from tokbench.metrics.face import FaceIdentity
    from tokbench.metrics.pixel import PSNR, SSIM
    from tokbench.metrics.temporal import TemporalConsistency
    from tokbench.metrics.text import TextFidelity

    for cls in (PSNR, SSIM, TextFidelity, FaceIdentity, TemporalConsistency):
        for column, higher in zip(cls.columns, cls.higher_is_better):
            assert C.KNOWN_METRICS[column].higher_is_better == higher, (cls.__name__, column)


def test_tokbench_mean_resamples_each_bin_and_averages_bin_means():
    # constant differences per bin: every resample has the same bin means, so the interval collapses onto
    # the macro mean (1 + 0 + 0) / 3, not onto the micro mean over 55 instances (2 / 55)
    samples = [np.ones(2), np.zeros(50), np.zeros(3)]
    lo, hi = C.bootstrap_interval(samples, 0.95, 1000, np.random.default_rng(0))
    assert lo == pytest.approx(1 / 3) and hi == pytest.approx(1 / 3)
    # a single sample: the percentile interval of the mean agrees with a direct numpy bootstrap
    x = np.random.default_rng(1).normal(0.5, 1.0, 200)
    lo, hi = C.bootstrap_interval([x], 0.9, 4000, np.random.default_rng(2))
    rng = np.random.default_rng(3)
    means = x[rng.integers(0, x.size, (4000, x.size))].mean(axis=1)
    ref_lo, ref_hi = np.percentile(means, [5, 95])
    assert lo == pytest.approx(ref_lo, abs=0.03) and hi == pytest.approx(ref_hi, abs=0.03)
    assert lo < x.mean() < hi


def test_python_m_tokbench_check_is_wired(runs):
    import subprocess
    import sys

    from tokbench.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    if "check" not in sub.choices:
        pytest.fail("`tokbench check` is not wired into tokbench/cli.py yet: add "
                    "`from tokbench.check import add_check_parser; add_check_parser(sub)` in build_parser()")
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-m", "tokbench", "check", "-b", str(runs["q50"]), "-c", str(runs["q30"]),
                           "-m", "PSNR"], capture_output=True, text=True, cwd=root)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("## tokbench check: REGRESSION")
    proc = subprocess.run([sys.executable, "-m", "tokbench", "check", "-b", str(runs["q50-limit3"]), "-c",
                           str(runs["q50"])], capture_output=True, text=True, cwd=root)
    assert proc.returncode == 2 and "limit: baseline 3 != candidate null" in proc.stderr
