"""Evaluators the text and face metrics plug in: OCR engines and face identity backends.

Importing this package registers the built-in ones; heavy libraries load only when one is created.
"""
from tokbench.evaluators.face import (FACE_BACKENDS, FaceEmbedder, SamePersonRule, create_face_backend,
                                      list_face_backends, register_face_backend)
from tokbench.evaluators.ocr import OCR_ENGINES, OCREngine, create_ocr_engine, list_ocr_engines, register_ocr_engine

from tokbench.evaluators import rapidocr_engine, easyocr_engine, parseq_engine  # noqa: F401,E402
from tokbench.evaluators import dlib_backend, insightface_backend  # noqa: F401,E402

__all__ = ["FACE_BACKENDS", "FaceEmbedder", "SamePersonRule", "create_face_backend", "list_face_backends",
           "register_face_backend", "OCR_ENGINES", "OCREngine", "create_ocr_engine", "list_ocr_engines",
           "register_ocr_engine"]
