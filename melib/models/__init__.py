"""One module per architecture: ``softnet``, ``lbcnn``, ``dyngeonet``, ``cropnet``, ``bai``,
and ``backbones`` (the small CNNs SOFTNet's Table 3 compares)."""

__all__ = ["backbones", "bai", "cropnet", "dyngeonet", "lbcnn", "softnet"]
