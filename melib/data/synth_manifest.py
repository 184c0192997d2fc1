"""The synthetic corpus's manifest: its file name, the reader and the "did melib write it" test.

``melib.data.synth`` writes ``<root>/<key>/synth_manifest.json``; ``melib.data.synth_check``
and the corpus figures read it. Both import it from here, so that neither imports the
other's caller (``synth`` -> ``synth_check`` -> ``synth_manifest``, one way).
"""

from __future__ import annotations

import json
from pathlib import Path

MANIFEST_NAME = "synth_manifest.json"
GENERATOR_PREFIX = "melib.data.synth"


def load_manifest(root, dataset: str) -> dict:
    """The manifest of ``dataset`` under a corpus root (``root/<dataset>/...``)."""
    path = Path(root) / dataset / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {root} is not a melib synthetic corpus "
            f"with {dataset}. Fix: run `melib synth book --out {root}`."
        )
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(
            f"{path}: the manifest is not valid JSON ({exc}); the corpus is damaged. "
            f"Fix: regenerate it (`melib synth book --out {root}`)."
        ) from None
    if not isinstance(manifest, dict) or "videos" not in manifest:
        raise ValueError(
            f"{path}: not a melib synthetic-corpus manifest (no 'videos'). Fix: "
            f"regenerate it (`melib synth book --out {root}`)."
        )
    return manifest


def is_synthetic(folder, dataset: str) -> bool:
    """Whether ``folder`` is a dataset folder that melib synth wrote (its manifest says so)."""
    try:
        info = json.loads((Path(folder) / MANIFEST_NAME).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return (
        isinstance(info, dict)
        and info.get("dataset") == dataset
        and str(info.get("generator", "")).startswith(GENERATOR_PREFIX)
    )
