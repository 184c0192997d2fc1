"""LBCNN's data: each dataset loaded, its faces tracked and the inputs of every sampled
frame cached (face crop + ROI mosaic, :mod:`melib.features.lbcnn`)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from melib.data.datasets import load_from_data_root
from melib.features.lbcnn import CLASS_NAMES, SamplingSettings, VideoSamples, prepare_videos
from melib.pipelines import common
from melib.pipelines.lbcnn.config import Setup

__all__ = ["Prepared", "prepare", "sample_summary"]


@dataclass
class Prepared:
    """One dataset: the loader and every video's cached samples."""

    name: str
    dataset: object
    videos: dict[str, VideoSamples]
    sampling: SamplingSettings

    def sample_counts(self) -> pd.DataFrame:
        rows = []
        for vs in self.videos.values():
            counts = vs.samples["label"].value_counts()
            rows.append(
                {
                    "subject": vs.subject,
                    "video": vs.video,
                    "frames": vs.n_frames,
                    "classified": len(vs.grid),
                    **{name: int(counts.get(i, 0)) for i, name in enumerate(CLASS_NAMES)},
                }
            )
        return pd.DataFrame(rows)


def prepare(setup: Setup, *, progress: bool = True) -> dict[str, Prepared]:
    """Load each dataset and cache the inputs of every video (crops, ROIs, samples)."""
    root = common.data_root_for(setup)
    out = {}
    for name in setup.datasets:
        ds = load_from_data_root(name, root)
        sampling = setup.sampling(name, ds.fps)
        # a plumbing run: at most 2 videos, from different subjects first (None: every video)
        chosen = (
            common.plumbing_videos(ds.videos, setup.limit_steps)["video"]
            if common.is_plumbing(setup)
            else None
        )
        videos = prepare_videos(
            ds, setup.input_settings, sampling, videos=chosen, workers=setup.workers, progress=progress
        )
        out[name] = Prepared(name, ds, videos, sampling)
    return out


def sample_summary(prepared: dict[str, Prepared]) -> pd.DataFrame:
    """Training samples per class and classified frames, per dataset."""
    rows = []
    for name, p in prepared.items():
        t = p.sample_counts()
        rows.append(
            {
                "dataset": name,
                "subjects": t["subject"].nunique(),
                "videos": len(t),
                "frames": int(t["frames"].sum()),
                "stride": p.sampling.stride,
                "classified": int(t["classified"].sum()),
                **{c: int(t[c].sum()) for c in CLASS_NAMES},
                "neutral gap (frames)": p.sampling.neutral_gap,
            }
        )
    return pd.DataFrame(rows).set_index("dataset")
