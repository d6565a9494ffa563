"""insightface (antelopev2) code path with a tiny ONNX recogniser exported from a random torch net with the
glintr100 interface (N x 3 x 112 x 112 in, N x 512 out), the ArcFace alignment, and the missing-model error."""
import io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from tokbench.data.items import Face, Item
from tokbench.errors import MissingWeightsError
from tokbench.evaluators import create_face_backend
from tokbench.evaluators.alignment import ARCFACE_TEMPLATE_112, arcface_matrix, norm_crop
from tokbench.evaluators.insightface_backend import arcface_input_norm
from tokbench.metrics.base import Sample
from tokbench.metrics.face import FaceIdentity
from tokbench.weights import weights_dir

onnx = pytest.importorskip("onnx")

# the astronaut's landmarks (dlib 68-point fit, insightface order): fixed numbers keep this file dlib-free
ASTRONAUT_KPS = np.array([[203.17, 101.5], [246.5, 104.17], [225.0, 127.0], [201.0, 139.0], [246.0, 141.0]])


class TinyRecognizer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 5, stride=4)
        self.fc = torch.nn.Linear(8 * 27 * 27, 512)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def export(model: torch.nn.Module, path, dynamic: bool = True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is enough for a conv net
        torch.onnx.export(model, (torch.randn(1, 3, 112, 112),), str(path), input_names=["data"],
                          output_names=["fc1"], dynamic_axes={"data": {0: "N"}, "fc1": {0: "N"}} if dynamic else None,
                          dynamo=False)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    model = TinyRecognizer().eval()
    folder = tmp_path_factory.mktemp("tiny")
    return model, export(model, folder / "glintr100.onnx"), export(model, folder / "fixed.onnx", dynamic=False)


def jpeg(image, quality):
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def test_arcface_alignment_recovers_an_exact_similarity():
    angle, scale, shift = np.deg2rad(12.0), 1.7, np.array([140.0, 60.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    kps = ARCFACE_TEMPLATE_112 @ (scale * rot).T + shift
    matrix = arcface_matrix(kps)
    np.testing.assert_allclose(kps @ matrix[:, :2].T + matrix[:, 2], ARCFACE_TEMPLATE_112, atol=1e-4)
    # the warp samples the image at the inverse map: a synthetic ramp image comes back as predicted
    ys, xs = np.mgrid[0:400, 0:400]
    ramp = np.stack([xs % 256, ys % 256, (xs + ys) % 256], -1).astype(np.uint8)
    crop = norm_crop(ramp, kps)
    inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))
    src = np.array([56.0, 70.0, 1.0]) @ inverse.T
    assert abs(int(crop[70, 56, 0]) - src[0] % 256) <= 1 and abs(int(crop[70, 56, 1]) - src[1] % 256) <= 1


def test_tiny_model_embeds_like_torch_and_is_found_in_the_insightface_home(tiny, tmp_path, monkeypatch):
    model, path, fixed = tiny
    pack = tmp_path / "home" / ".insightface" / "models" / "antelopev2"
    pack.mkdir(parents=True)
    (pack / "glintr100.onnx").write_bytes(path.read_bytes())
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("INSIGHTFACE_HOME", raising=False)
    backend = create_face_backend("insightface")
    assert (backend.input_mean, backend.input_std) == (127.5, 127.5) and backend.dynamic_batch and backend.dim == 512
    image = data.astronaut()
    faces = [Face(kps=tuple(map(tuple, ASTRONAUT_KPS)), box=(175, 76, 265, 166), ratio=0.2),
             Face(kps=tuple(map(tuple, ASTRONAUT_KPS * 0.9 + 20)), box=(0, 0, 1, 1), ratio=0.1)]
    emb = backend.embed(image, faces)
    # peer: the torch module on insightface's preprocessing of the same aligned crops
    crops = np.stack([norm_crop(image, np.asarray(f.kps)) for f in faces]).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy((crops - 127.5) / 127.5).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(emb, expected, rtol=1e-4, atol=1e-4)
    loop = create_face_backend("insightface", model_path=fixed)  # batch axis fixed at 1: one face per call
    assert not loop.dynamic_batch
    np.testing.assert_allclose(loop.embed(image, faces), emb, rtol=1e-5, atol=1e-5)
    d = backend.describe()
    assert d["model_files"] == ["glintr100.onnx"] and d["same_person"]["rule"] == "cosine >= 0.28"
    assert "web-demos/src_recognition" in d["same_person"]["source"] and len(d["weights_sha256"]) == 64


def test_face_metric_with_insightface_backend(tiny):
    _, path, _ = tiny
    metric = FaceIdentity(create_face_backend("insightface", model_path=path))
    face = Face(kps=tuple(map(tuple, ASTRONAUT_KPS)), box=(175, 76, 265, 166), ratio=0.2)
    item = Item(id="astronaut", modality="image", path="astronaut.png", faces=(face,))
    original = data.astronaut()[None]
    ref = metric.reference(Sample(item, original, original))
    same = metric.score(Sample(item, original, original), ref)[0]
    assert same["F-Sim"] == pytest.approx(1.0, abs=1e-6) and same["F-L2"] == pytest.approx(0.0, abs=1e-5)
    blurred = metric.score(Sample(item, original, jpeg(original[0], 5)[None]), ref)[0]
    assert blurred["F-Sim"] < same["F-Sim"]
    assert blurred["F-L2"] == pytest.approx(np.sqrt(2 - 2 * blurred["F-Sim"]), abs=1e-6)  # unit-normalised L2


def test_mxnet_style_graph_normalises_inside(tmp_path):
    """ArcFaceONNX's rule: graphs starting with _minus/_mul nodes get raw 0..255 input."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Sub", ["data", "mean"], ["a"], name="_minusscalar0"),
             helper.make_node("Mul", ["a", "scale"], ["b"], name="_mulscalar0"),
             helper.make_node("Flatten", ["b"], ["fc1"], name="flatten0")]
    graph = helper.make_graph(nodes, "mx", [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 112, 112])],
                              [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, 37632])],
                              [helper.make_tensor("mean", TensorProto.FLOAT, [], [127.5]),
                               helper.make_tensor("scale", TensorProto.FLOAT, [], [0.0078125])])
    onnx.save(helper.make_model(graph), str(tmp_path / "mx.onnx"))
    assert arcface_input_norm(tmp_path / "mx.onnx") == (0.0, 1.0)


def test_missing_model_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path / "nowhere"))
    with pytest.raises(MissingWeightsError) as err:
        create_face_backend("insightface")
    msg = str(err.value)
    assert "\n" not in msg and "glintr100.onnx" in msg
    assert str(weights_dir() / "glintr100.onnx") in msg and str(tmp_path / "nowhere" / "models" / "antelopev2") in msg
    with pytest.raises(MissingWeightsError, match="checkpoint file .*absent.onnx does not exist"):
        create_face_backend("insightface", model_path=tmp_path / "absent.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(MissingWeightsError, match="junk.onnx"):
        create_face_backend("insightface", model_path=tmp_path / "junk.onnx")
