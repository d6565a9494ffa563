"""The suites shipped with tokbench: the embedded curated datasets x the implemented metrics."""
from tokbench.data.embedded import EMBEDDED_SUITES
from tokbench.suites import Suite, register_suite

import tokbench.data.samples  # noqa: F401  (package-images / package-videos, for quick pixel-only runs)
import tokbench.metrics  # noqa: F401  (registers the metrics named below)

PIXEL_METRICS = ("psnr", "ssim", "lpips", "rfid")
VIDEO_METRICS = ("text", "face", "psnr", "psnr-pooled", "ssim", "lpips", "tcons", "rfvd")

register_suite(Suite("text", datasets=EMBEDDED_SUITES["text"], metrics=("text", *PIXEL_METRICS),
                     description="Text fidelity: real and rendered words over real backgrounds"))
register_suite(Suite("face", datasets=EMBEDDED_SUITES["face"], metrics=("face", *PIXEL_METRICS),
                     description="Face identity: real faces and multi-scale compositions"))
register_suite(Suite("text-face", datasets=EMBEDDED_SUITES["text-face"], metrics=("text", "face", *PIXEL_METRICS),
                     description="Text and face fidelity on images (the default suite)"))
register_suite(Suite("video", datasets=EMBEDDED_SUITES["video"], metrics=VIDEO_METRICS, modality="video",
                     resolutions=(256,), description="Video reconstruction on sample clips (short side 256)"))
