"""Feature extractors (Inception, I3D), streaming Gaussian statistics and the Frechet distance."""
