"""First contact: every natural command-line mistake ends in one line naming the option and what is valid
(exit code 2), before any computation; defaults that produce the numbers are recorded."""
import argparse
import time

import pytest
import torch

import tokbench
from tokbench.cli import build_parser, main
from tokbench.errors import BadInputError, MissingWeightsError
from tokbench.pipeline import RunConfig, Runner
from tokbench.tokenizers.registry import create_tokenizer, get_entry
from tokbench.weights import WeightFile, hub_unreachable, resolve


def cli(argv, capsys):
    """(exit code, stdout, stderr) of the CLI run in this process."""
    try:
        code = main(argv)
    except SystemExit as e:  # argparse: usage mistakes, --version, --help
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


RUN = ["run", "--quiet", "--out", "unused-out"]


@pytest.mark.parametrize("value,why", [("-1", "-1 is not positive"), ("0", "0 is not positive"),
                                       ("x", "'x' is not a whole number")])
def test_limit_must_be_positive(value, why, capsys, tmp_path):
    code, out, err = cli([*RUN, "-t", "jpeg", "--limit", value], capsys)
    line = one_line(err)
    assert code == 2 and "--limit" in line and why in line and out == ""
    with pytest.raises(BadInputError, match="--limit 0: must be a positive"):  # the Python API too
        Runner(RunConfig(tokenizer="jpeg", limit=0, out=str(tmp_path)))


@pytest.mark.parametrize("option,expect", [
    ("jpeg:quality=abc", "option quality must be an integer, got 'abc' (option quality=1..100 (default 75))"),
    ("jpeg:quality=0", "option quality must be an integer in 1..100, got 0"),
    ("jpeg:quality=101", "option quality must be an integer in 1..100, got 101"),
    ("jpeg:quality=75.5", "option quality must be an integer, got 75.5"),
    ("webp:quality=-3", "option quality must be an integer in 0..100, got -3"),
    ("webp:lossless=maybe", "option lossless must be true or false, got 'maybe'"),
    ("jpeg:qualty=90", "unknown option(s) qualty; valid options: quality"),
])
def test_bad_tokenizer_option_is_one_line(option, expect, capsys):
    code, _, err = cli([*RUN, "-t", option], capsys)
    line = one_line(err)
    assert code == 2 and expect in line, line


def test_codec_range_in_description_matches_the_code():
    assert "quality=1..100" in get_entry("jpeg").spec.description
    for q in (1, 100):
        assert create_tokenizer(f"jpeg:quality={q}").options["quality"] == q
    assert "quality=0..100" in get_entry("webp").spec.description
    assert create_tokenizer("webp:quality=0").options["quality"] == 0


def test_unusable_device_is_one_line(capsys):
    # cuda:<device count> never exists: no GPU here, or one past the last one on a GPU machine
    bad = f"cuda:{torch.cuda.device_count()}"
    code, _, err = cli([*RUN, "-t", "jpeg", "--device", bad], capsys)
    line = one_line(err)
    assert code == 2 and f"--device {bad}" in line and "valid here: cpu" in line
    if not torch.cuda.is_available():
        code, _, err = cli([*RUN, "-t", "jpeg", "--device", "cuda"], capsys)
        assert code == 2 and "no CUDA GPU is visible" in one_line(err)
    code, _, err = cli([*RUN, "-t", "jpeg", "--device", "gpu0"], capsys)
    assert code == 2 and "--device gpu0: unknown device; valid here: cpu" in one_line(err)


def test_resolution_without_bins_is_refused_unless_asked(capsys, tmp_path):
    code, _, err = cli([*RUN, "-t", "jpeg", "--resolution", "300"], capsys)
    line = one_line(err)
    assert code == 2 and "--resolution 300" in line and "256, 512, 1024 only" in line
    assert "--allow-unbinned-resolution" in line
    code, _, err = cli([*RUN, "-t", "jpeg", "--suite", "video", "--resolution", "300"], capsys)
    assert code == 2 and "video words exist for 256, 480 only" in one_line(err)
    # pixel metrics have no bins: any size is fine; and the opt-in lets text/face run unbinned
    Runner(RunConfig(tokenizer="jpeg", resolutions=[300], metrics=["psnr"], out=str(tmp_path)))
    runner = Runner(RunConfig(tokenizer="jpeg", resolutions=[300], metrics=["psnr", "text"], out=str(tmp_path),
                              allow_unbinned_resolution=True))
    assert runner.resolutions == [300] and "text" in runner.metrics


def test_default_options_are_in_the_label_and_manifest():
    jpeg = create_tokenizer("jpeg")
    assert jpeg.label == "jpeg:quality=75" and jpeg.describe()["options"] == {"quality": 75}
    assert create_tokenizer("jpeg:quality=75").label == jpeg.label  # the same run, the same label and cache key
    webp = create_tokenizer("webp:lossless=true")
    assert webp.label == "webp:lossless=True,quality=75"
    assert webp.describe()["options"] == {"quality": 75, "lossless": True}
    assert create_tokenizer("h264").label == "h264:crf=23"
    assert create_tokenizer("h264").describe()["options"] == {"crf": 23, "preset": "medium"}
    assert create_tokenizer("identity").label == "identity"


def test_version_and_help_for_every_run_option(capsys):
    code, out, _ = cli(["--version"], capsys)
    assert code == 0 and out.strip() == f"tokbench {tokbench.__version__}"
    run = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices["run"]
    missing = [a.option_strings[0] for a in run._actions if a.option_strings and not a.help]
    assert missing == [], missing


def test_hub_unreachable_is_said_at_once(monkeypatch, tmp_path):
    monkeypatch.delenv("TOKBENCH_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens, refused at once
    t0 = time.perf_counter()
    why = hub_unreachable()
    assert why is not None and "Hugging Face hub is unreachable" in why and "127.0.0.1" in why
    wf = WeightFile(name="probe-test", filename="probe-test/model.safetensors", hub_repo="someone/some-model")
    with pytest.raises(MissingWeightsError) as err:
        resolve(wf)
    msg = str(err.value)
    assert "\n" not in msg and "unreachable" in msg and wf.where_to_put() in msg
    assert time.perf_counter() - t0 < 10  # no retries
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "HF_HUB_OFFLINE" in hub_unreachable()


def test_datasets_list_does_not_build(monkeypatch, tmp_path, capsys):
    data = tmp_path / "data"
    monkeypatch.setenv("TOKBENCH_DATA_CACHE", str(data))
    code, out, _ = cli(["datasets", "list", "text"], capsys)
    assert code == 0 and "no: tokbench datasets build text-real" in out
    assert not data.exists() or not any(data.iterdir())
    assert ".0" not in out and "nan" not in out.lower() and "<NA>" not in out
