"""One package per paper, each turning the library's layers into a notebook's few calls.

``softnet``, ``lbcnn`` and ``dyngeonet`` spot; ``cropnet`` and ``bai`` recognise. Each has
``configure`` (parameters to a ``Setup``), ``prepare``, ``run`` (the entry point that
returns ``RunResult`` objects), ``evaluate``, its tables and figures, and ``caveats``;
``common`` holds what they share and ``validation`` the parameter checks (see
CONTRIBUTING.md, "Names").
"""

__all__ = ["common", "validation", "softnet", "lbcnn", "dyngeonet", "cropnet", "bai"]
