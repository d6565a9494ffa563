"""rapidocr 3.x (PP-OCR ONNX models shipped in the wheel): the offline default OCR engine.

Recognition only: the crops come from ground-truth boxes, so detection and the angle classifier are off.
rapidocr's ``TextRecognizer`` resizes a crop to height 48 and pads it (zeros after normalisation) to
``48 * max(320/48, widest ratio in its batch)`` px. Batching it as is would let a word's result depend on
the other words of its batch (through that padding width), so we form the batches ourselves with
rapidocr's own ``resize_norm_img``, session and CTC decoder: crops up to 320 px wide at height 48 (most
words) are padded to 320 exactly as a single-image call does; wider crops are padded to the next multiple
of 32 px of their own width. A crop's prediction then depends only on the crop. The models were trained on
BGR input (PaddleOCR reads with cv2), so RGB crops are converted first.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np

from tokbench.errors import MissingWeightsError
from tokbench.evaluators.ocr import OCREngine, register_ocr_engine
from tokbench.evaluators.versions import package_version

# On a 2-core CPU the recogniser is compute-bound: batches of 2-4 crops ran ~7 % faster than single crops
# and batches of 16-64 ~25 % slower (cache pressure); a GPU wants large batches.
CPU_BATCH, GPU_BATCH = 4, 64
WIDTH_STEP = 32  # padded widths of crops wider than the default 320 px are rounded up to this


def cpu_session(model_path: Path, threads: int = 1):
    """rapidocr's CPU session options, except three that matter inside a pipeline: onnxruntime ignores
    OMP_NUM_THREADS and starts one thread per core in every process; here each run gets ``threads`` (1: the
    engine runs its batches concurrently instead, see ``RapidOCREngine``); its threads spin-wait after each
    run, which took cores from the SSIM and face work that follows (measured: OCR interleaved with SSIM 15 %
    faster without spinning, same OCR speed alone); and its memory arena (below)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4
    # rapidocr turns onnxruntime's arena off; then every run mallocs and frees its buffers between torch's
    # (SSIM) allocations and glibc's heap fragments: peak RSS of text + SSIM runs 1.9-2.3 GB, 1.4 GB with it on
    options.enable_cpu_mem_arena = True
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])


@register_ocr_engine("rapidocr")
class RapidOCREngine(OCREngine):
    name = "rapidocr"
    concurrent_runs = 1

    def __init__(self, device: str = "cpu", batch_size: Optional[int] = None):
        try:
            from rapidocr import RapidOCR
        except ImportError as e:
            raise MissingWeightsError(f"OCR engine rapidocr: package not importable ({e}); "
                                      "pip install 'rapidocr>=3,<4' onnxruntime") from None
        import onnxruntime

        use_cuda = str(device).startswith("cuda") and "CUDAExecutionProvider" in onnxruntime.get_available_providers()
        self.batch_size = int(batch_size or (GPU_BATCH if use_cuda else CPU_BATCH))
        params = {"Global.log_level": "error", "Global.use_det": False, "Global.use_cls": False,
                  "EngineConfig.onnxruntime.use_cuda": use_cuda}
        self._ocr = RapidOCR(params=params)
        self._rec = self._ocr._load_rec_model()  # the recogniser alone; RapidOCR.__call__ works per image
        session = self._rec.session.session
        self._model_path = Path(getattr(session, "_model_path", "") or "unknown")
        if not use_cuda and self._model_path.is_file():
            self._rec.session.session = session = cpu_session(self._model_path)
            import torch

            # one single-threaded run per core at a time (1 per rank under torchrun, torch's count): the same
            # batches and results as one run at a time with 2 intra-op threads, ~10 % less CPU (no split of
            # each small batch's layers between threads)
            self.concurrent_runs = torch.get_num_threads()
        self._providers = session.get_providers()
        cfg = self._rec.cfg
        self._model_id = " ".join(str(getattr(v, "value", v)) for v in (cfg.ocr_version, cfg.lang_type, cfg.model_type))
        _, self._height, self._min_width = (int(v) for v in self._rec.rec_image_shape)

    @property
    def version(self) -> str:
        return (f"rapidocr {package_version('rapidocr')}; onnxruntime {package_version('onnxruntime')}; "
                f"{self._model_path.name}")

    @property
    def model_files(self) -> list[str]:
        return [self._model_path.name]

    def describe(self) -> dict:
        # concurrent_runs is left out: it changes no prediction, only how the batches share the cores
        return {**super().describe(), "model": self._model_id,
                "input": f"BGR, height {self._height}, padded to {self._min_width} px (wider crops: next multiple"
                         f" of {WIDTH_STEP} px)",
                "mode": "recognition only on ground-truth crops (no detection, no angle classifier), greedy CTC",
                "batch_size": self.batch_size, "providers": self._providers}

    def padded_width(self, crop: np.ndarray) -> int:
        """Input width for this crop: rapidocr's single-image width, rounded up above the 320 px default."""
        natural = math.ceil(self._height * crop.shape[1] / crop.shape[0])
        if natural <= self._min_width:
            return self._min_width
        return math.ceil(natural / WIDTH_STEP) * WIDTH_STEP

    def _recognize(self, crops: list[np.ndarray]) -> list[str]:
        import cv2

        groups: dict[int, list[int]] = {}
        for i, crop in enumerate(crops):
            groups.setdefault(self.padded_width(crop), []).append(i)
        batches = [(width, members[start:start + self.batch_size]) for width, members in sorted(groups.items())
                   for start in range(0, len(members), self.batch_size)]

        def run(width: int, chunk: list[int]) -> list[str]:
            ratio = (width + 0.5) / self._height  # resize_norm_img takes int(height * ratio) as the width
            batch = np.stack([self._rec.resize_norm_img(cv2.cvtColor(crops[i], cv2.COLOR_RGB2BGR), ratio)
                              for i in chunk]).astype(np.float32)
            lines, _ = self._rec.postprocess_op(self._rec.session(batch), False)
            return [text for text, _score in lines]

        if self.concurrent_runs > 1 and len(batches) > 1:  # onnxruntime releases the GIL while it runs
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(self.concurrent_runs, len(batches))) as pool:
                texts = list(pool.map(lambda b: run(*b), batches))
        else:
            texts = [run(*b) for b in batches]
        preds = [""] * len(crops)
        for (_, chunk), chunk_texts in zip(batches, texts):
            for i, text in zip(chunk, chunk_texts):
                preds[i] = text
        return preds
