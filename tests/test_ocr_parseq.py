"""PARSeq (docTR) code path with a randomly initialised checkpoint, and its one-line missing-weights error.

The checkpoint is the state_dict of ``recognition.parseq(pretrained=False)`` saved to a temporary file, so
the real loading code runs; predictions are compared with docTR's own transforms and model call.
"""
import numpy as np
import pytest

pytest.importorskip("doctr", reason="python-doctr is optional (pip install --no-deps python-doctr)")

import torch  # noqa: E402
from doctr import transforms as T  # noqa: E402
from doctr.datasets import VOCABS  # noqa: E402
from doctr.models import recognition  # noqa: E402
from doctr.utils.common_types import Sample as DoctrSample  # noqa: E402
from skimage import data  # noqa: E402
from torchvision.transforms import Normalize  # noqa: E402

from tokbench.errors import MissingWeightsError  # noqa: E402
from tokbench.evaluators import create_ocr_engine  # noqa: E402
from tokbench.evaluators.parseq_engine import LEGACY_KEYS, PARSEQ_WEIGHTS, resize_keep_ratio  # noqa: E402
from tokbench.weights import weights_dir  # noqa: E402


@pytest.fixture(scope="module")
def random_parseq(tmp_path_factory):
    torch.manual_seed(0)
    model = recognition.parseq(pretrained=False, vocab=VOCABS["french"], input_shape=(3, 32, 128)).eval()
    with torch.no_grad():  # make <eos> likely so random decoding ends after a few steps instead of 32
        model.head.bias[model.vocab_size] = model.head.bias.max() + 0.5
    path = tmp_path_factory.mktemp("parseq") / "parseq-random.pt"
    state = model.state_dict()
    state.update({k: torch.zeros(384) for k in LEGACY_KEYS})  # as in checkpoints saved before docTR 0.11.1
    torch.save(state, path)
    return model, path


@pytest.fixture(scope="module")
def crops():
    page = np.stack([data.page()] * 3, -1)
    boxes = [(3, 9, 297, 37), (2, 119, 175, 138), (40, 60, 52, 100), (10, 10, 42, 18)]
    return [np.ascontiguousarray(page[y0:y1, x0:x1]) for x0, y0, x1, y1 in boxes]


def test_resize_matches_doctr_transform(crops):
    doctr_resize = T.Resize((32, 128), preserve_aspect_ratio=True)
    for crop in crops:  # wide, short, tall and exactly 1:4
        x = torch.from_numpy(crop).permute(2, 0, 1).float() / 255
        theirs = doctr_resize(DoctrSample(image=x)).image
        torch.testing.assert_close(resize_keep_ratio(x), theirs, rtol=0, atol=0)


def test_random_checkpoint_predicts_like_doctr(random_parseq, crops):
    model, path = random_parseq
    engine = create_ocr_engine("parseq", weights=path, batch_size=2)  # two batches
    crops = crops[:3]
    for name, value in model.state_dict().items():
        torch.testing.assert_close(engine._model.state_dict()[name], value, rtol=0, atol=0)
    preds = engine.recognize(crops)
    # docTR's own pipeline on the same crops: Resize -> Normalize(model cfg) -> model(x, return_preds=True)
    resize = T.Resize((32, 128), preserve_aspect_ratio=True)
    batch = torch.stack([resize(DoctrSample(image=torch.from_numpy(c).permute(2, 0, 1).float() / 255)).image
                         for c in crops])
    with torch.inference_mode():
        out = model(Normalize(model.cfg["mean"], model.cfg["std"])(batch), return_preds=True)
    assert preds == [w for w, _ in out["preds"]]
    assert len(preds) == len(crops) and any(preds)
    d = engine.describe()
    assert d["model_files"] == ["parseq-random.pt"] and "python-doctr" in d["version"]
    assert len(d["weights_sha256"]) == 64


def test_missing_weights_is_one_line():
    with pytest.raises(MissingWeightsError) as err:
        create_ocr_engine("parseq")
    msg = str(err.value)
    assert "\n" not in msg
    assert "parseq-56125471.pt" in msg and str(weights_dir() / "parseq-56125471.pt") in msg
    assert "docTR's cache" in msg
    with pytest.raises(MissingWeightsError, match="checkpoint file .*nowhere.pt does not exist"):
        create_ocr_engine("parseq", weights="/nowhere.pt")


def test_standard_name_with_other_content_is_refused(random_parseq, tmp_path, monkeypatch):
    """A file found under the standard name must carry docTR's sha256 prefix."""
    _, path = random_parseq
    monkeypatch.setenv("DOCTR_CACHE_DIR", str(tmp_path / "doctr"))
    cached = tmp_path / "doctr" / "models" / PARSEQ_WEIGHTS.filename
    cached.parent.mkdir(parents=True)
    cached.write_bytes(path.read_bytes())
    with pytest.raises(MissingWeightsError, match="expected 56125471… \\(refusing a mismatched file"):
        create_ocr_engine("parseq")
