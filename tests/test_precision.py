"""The TF32 guard of feature extractors and torch tokenizers, with flags set the way a user could set them.

The flags are process-wide and exist on CPU builds too, so this runs without a GPU: inside the guard cuDNN
convolutions / RNNs and cuBLAS matmuls must resolve to IEEE float32, and afterwards every flag is back.
"""
import operator

import pytest
import torch

from tokbench.features.precision import ieee_fp32, tf32_disabled
from tokbench.tokenizers.torch_module import ieee_fp32 as tokenizer_ieee_fp32

NEW_API = hasattr(torch.backends.cudnn, "conv")  # torch >= 2.9: per-operator fp32_precision
RAW = [("generic", "all"), ("cuda", "all"), ("cuda", "conv"), ("cuda", "rnn"), ("cuda", "matmul"),
       ("mkldnn", "all"), ("mkldnn", "conv"), ("mkldnn", "rnn"), ("mkldnn", "matmul")]


def raw_flags():
    if not NEW_API:
        return {}
    return {k: torch._C._get_fp32_precision_getter(*k) for k in RAW}


def legacy_readings():
    """Each legacy getter's value, or the fact that torch refuses to answer (mixed APIs)."""
    out = {}
    for name, get in (("cudnn", lambda: torch.backends.cudnn.allow_tf32),
                      ("matmul", lambda: torch.backends.cuda.matmul.allow_tf32),
                      ("precision", torch.get_float32_matmul_precision)):
        try:
            out[name] = get()
        except RuntimeError:
            out[name] = "raises"
    return out


def effective(op):
    """What a CUDA kernel of ``op`` uses: the operator's flag, else the cuda backend's, else the global one."""
    for key in (("cuda", op), ("cuda", "all"), ("generic", "all")):
        value = torch._C._get_fp32_precision_getter(*key)
        if value != "none":
            return value
    return "none"


@pytest.fixture
def restore_flags():
    legacy = legacy_readings()
    raw = raw_flags()
    yield
    torch.backends.cudnn.allow_tf32 = legacy["cudnn"] if legacy["cudnn"] != "raises" else True
    torch.set_float32_matmul_precision(legacy["precision"] if legacy["precision"] != "raises" else "highest")
    for key, value in raw.items():
        torch._C._set_fp32_precision_setter(*key, value)


def _set(path, value):
    holder = operator.attrgetter(path.rsplit(".", 1)[0])(torch) if "." in path else torch
    setattr(holder, path.rsplit(".", 1)[1], value)


USER_SETTINGS = {
    "legacy booleans on": [("backends.cudnn.allow_tf32", True), ("backends.cuda.matmul.allow_tf32", True)],
    "conv-only tf32 (new API)": [("backends.cudnn.conv.fp32_precision", "tf32"),
                                 ("backends.cudnn.rnn.fp32_precision", "ieee")],
    "conv-only ieee (new API)": [("backends.cudnn.conv.fp32_precision", "ieee")],
    "matmul tf32 (new API)": [("backends.cuda.matmul.fp32_precision", "tf32")],
    "global tf32, conv inherits": [("backends.fp32_precision", "tf32"), ("backends.cudnn.conv.fp32_precision", "none")],
    "set_float32_matmul_precision high": [("set_float32_matmul_precision", "high")],
}
GUARDS = {"tf32_disabled": tf32_disabled, "extractor ieee_fp32": lambda: ieee_fp32("cuda"),
          "tokenizer ieee_fp32": tokenizer_ieee_fp32}


@pytest.mark.parametrize("guard", list(GUARDS))
@pytest.mark.parametrize("setting", list(USER_SETTINGS))
def test_guard_gives_ieee_fp32_and_restores_every_flag(setting, guard, restore_flags):
    if "new API" in setting or "global" in setting:
        if not NEW_API:
            pytest.skip("torch < 2.9 has no fp32_precision flags")
    for path, value in USER_SETTINGS[setting]:
        if path == "set_float32_matmul_precision":
            torch.set_float32_matmul_precision(value)
        else:
            _set(path, value)
    before_raw, before_legacy = raw_flags(), legacy_readings()
    if setting.startswith("conv-only"):
        assert before_legacy["cudnn"] == "raises"  # the state that made the old guard raise
    with GUARDS[guard]():
        if NEW_API:
            assert [effective(op) for op in ("conv", "rnn", "matmul")].count("tf32") == 0  # "none": no TF32 either
        assert legacy_readings() == {"cudnn": False, "matmul": False, "precision": "highest"}
    assert raw_flags() == before_raw
    after = legacy_readings()
    for name in ("matmul", "precision"):
        assert after[name] == before_legacy[name]
    if before_legacy["cudnn"] != "raises":
        assert after["cudnn"] == before_legacy["cudnn"]


def test_cpu_extractors_leave_flags_alone(restore_flags):
    if not NEW_API:
        pytest.skip("torch < 2.9 has no fp32_precision flags")
    torch.backends.cudnn.conv.fp32_precision = "tf32"
    before = raw_flags()
    with ieee_fp32("cpu"):
        assert raw_flags() == before
