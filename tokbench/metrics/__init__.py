"""Metrics; importing this package registers the built-in ones."""
from tokbench.metrics.base import METRICS, DistributionMetric, InstanceMetric, Sample, register_metric

from tokbench.metrics import fid, fvd, lpips, pixel, temporal  # noqa: F401,E402

__all__ = ["METRICS", "DistributionMetric", "InstanceMetric", "Sample", "register_metric"]
