"""The suites shipped with tokbench."""
from tokbench.suites import Suite, register_suite

import tokbench.data.samples  # noqa: F401  (registers the datasets named below)
import tokbench.metrics  # noqa: F401  (registers the metrics named below)

IMAGE_METRICS = ("psnr", "ssim")
VIDEO_METRICS = ("psnr", "ssim")

register_suite(Suite("text", datasets=("package-images",), metrics=IMAGE_METRICS,
                     description="Text fidelity on images"))
register_suite(Suite("face", datasets=("package-images",), metrics=IMAGE_METRICS,
                     description="Face identity on images"))
register_suite(Suite("text-face", datasets=("package-images",), metrics=IMAGE_METRICS,
                     description="Text and face fidelity on images (the default suite)"))
register_suite(Suite("video", datasets=("package-videos",), metrics=VIDEO_METRICS, modality="video",
                     resolutions=(256,), description="Video reconstruction (short side 256)"))
