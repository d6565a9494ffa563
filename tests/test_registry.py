import pytest
import torch

from tokbench.errors import BadInputError, MissingWeightsError
from tokbench.registry import Registry, UnknownNameError
from tokbench.tokenizers import Encoded, Tokenizer, TokenizerSpec, create_tokenizer, list_tokenizers
from tokbench.tokenizers.registry import TOKENIZERS, parse_tokenizer_arg, register_tokenizer, weights_status
from tokbench.weights import WeightFile, resolve


class Halve(Tokenizer):
    def encode(self, x):
        return Encoded(bits=torch.zeros(x.shape[0], dtype=torch.float64), payload=x)

    def decode(self, enc):
        return enc.payload * self.options.get("gain", 0.5)


SPEC = TokenizerSpec(name="test-halve", family="test", kind="baseline", aliases=("test-half",))
register_tokenizer(SPEC)(lambda spec, *, gain=0.5: Halve(spec))


def test_round_trip_through_registry():
    assert "test-halve" in list_tokenizers()
    tok = create_tokenizer("test-half:gain=0.25")
    assert tok.spec is SPEC
    assert tok.options == {"gain": 0.25}
    assert tok.label == "test-halve:gain=0.25"
    y, bits = tok.reconstruct(torch.ones(1, 3, 1, 4, 4))
    assert torch.all(y == 0.25) and bits.tolist() == [0.0]


def test_unknown_names_list_valid_ones():
    with pytest.raises(UnknownNameError) as e:
        create_tokenizer("jpg")
    assert "jpeg" in str(e.value) and "identity" in str(e.value)
    with pytest.raises(BadInputError, match="valid options: quality"):
        create_tokenizer("jpeg:qualty=3")


def test_option_parsing():
    assert parse_tokenizer_arg("webp:quality=80,lossless=true,mode=x,f=0.5") == (
        "webp", {"quality": 80, "lossless": True, "mode": "x", "f": 0.5})
    with pytest.raises(BadInputError):
        parse_tokenizer_arg("jpeg:quality")


def test_duplicate_registration_refused():
    r = Registry("thing")
    r.add("a", 1, ("b",))
    with pytest.raises(ValueError):
        r.add("b", 2)
    assert r.get("b") == 1 and r.aliases_of("a") == ["b"]


def test_missing_weights_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKBENCH_WEIGHTS", str(tmp_path / "w"))
    wf = WeightFile(name="test-ckpt", filename="model.ckpt", hub_repo="someone/model")
    with pytest.raises(MissingWeightsError) as e:
        resolve(wf, what="test-tok")
    msg = str(e.value)
    assert "\n" not in msg and "model.ckpt" in msg and str(tmp_path / "w" / "model.ckpt") in msg
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "model.ckpt").write_bytes(b"x")
    assert resolve(wf) == tmp_path / "w" / "model.ckpt"
    pinned = WeightFile(name="p", filename="model.ckpt", sha256="0" * 64)
    with pytest.raises(MissingWeightsError, match="sha256"):
        resolve(pinned)


def test_weights_status_for_builtin():
    assert weights_status(TOKENIZERS.get("jpeg"))["weights"] == "none needed"
