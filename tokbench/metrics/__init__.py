"""Metrics; importing this package registers the built-in ones."""
from tokbench.metrics.base import METRICS, DistributionMetric, InstanceMetric, Sample, register_metric

from tokbench.metrics import face, fid, fvd, lpips, pixel, temporal, text  # noqa: F401,E402

__all__ = ["METRICS", "DistributionMetric", "InstanceMetric", "Sample", "register_metric"]
