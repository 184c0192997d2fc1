"""Per-frame and per-clip inputs computed from videos, cached on disk.

``flow`` (TV-L1 / Farneback flow and strain), ``softnet_input``, ``lbcnn`` (face and ROI
samples), ``dynamic_image`` (approximate rank pooling), ``geometry`` (landmark ratios),
``dyngeonet_windows``, ``residual_sums`` (ARS / RRS), ``cgpo`` (crop layouts),
``magnification`` (Eulerian video magnification), ``video`` (dataset access for
workers) and ``cache`` (keyed, atomic feature files).
"""

__all__ = [
    "cache",
    "cgpo",
    "dynamic_image",
    "dyngeonet_windows",
    "flow",
    "geometry",
    "lbcnn",
    "magnification",
    "residual_sums",
    "softnet_input",
    "video",
]
