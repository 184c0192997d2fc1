"""SOFTNet's data: each long-video dataset loaded, k derived, the per-video features
extracted (cached, in parallel), and the corpus and k tables."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from melib import runtime
from melib.features.cache import load_features, safe_name, video_stamp
from melib.features.softnet_input import FeatureJob, SoftnetFeatureSpec, compute_features
from melib.features.video import DatasetVideo, open_dataset
from melib.pipelines import common
from melib.pipelines.softnet.config import TYPES, Setup
from melib.pipelines.softnet.paper import PAPER_K

__all__ = ["Prepared", "derive_k", "prepare", "extract", "with_k", "k_table", "corpus_table"]


@dataclass
class Prepared:
    """One dataset ready for training: videos, k, features and ground truth."""

    name: str
    dataset: object
    root: Path
    k: dict
    videos: pd.DataFrame  # subject, video, n_frames (selected subjects only)
    gt: pd.DataFrame  # standard annotations of the selected videos
    specs: dict  # type -> SoftnetFeatureSpec
    paths: dict  # (video, type) -> Path
    mean_duration: dict = field(default_factory=dict)

    @property
    def subjects(self) -> list[str]:
        return sorted(self.videos["subject"].unique())

    def features(self, video: str, kind: str) -> np.ndarray:
        return load_features(self.paths[(video, kind)])

    def intervals(self, video: str, kind: str) -> np.ndarray:
        g = self.gt[(self.gt["video"] == video) & (self.gt["type"] == kind)]
        return g[["onset", "offset"]].to_numpy(dtype=np.int64)

    def n_frames(self, video: str) -> int:
        return int(self.videos.loc[self.videos["video"] == video, "n_frames"].iloc[0])


def derive_k(annotations: pd.DataFrame) -> tuple[dict, dict]:
    """SOFTNet's k per type: int((N+1)/2), N the mean (offset - onset) of that type."""
    ks, means = {}, {}
    for kind in TYPES:
        rows = annotations[annotations["type"] == kind]
        if rows.empty:
            continue
        n = float((rows["offset"] - rows["onset"]).mean())
        means[kind] = n
        ks[kind] = max(1, int((n + 1) / 2))
    return ks, means


def prepare(setup: Setup, *, progress: bool = True) -> dict:
    """Load each dataset, choose subjects, derive k and extract the features.

    Returns ``{dataset: Prepared}``. Features are computed only where the cache lacks
    them (worker processes, one video each), so a rerun is fast. A plumbing run keeps at
    most ``common.PLUMBING_MAX_VIDEOS`` videos per dataset, from different subjects.
    """
    root = common.data_root_for(setup)
    out = {}
    for name in setup.datasets:
        ds = open_dataset(name, str(root / name))
        derived, means = derive_k(ds.annotations)
        if setup.k is None:
            ks = derived
        elif isinstance(setup.k, dict):
            ks = {**derived, **setup.k}
        else:
            ks = {kind: int(setup.k) for kind in derived}
        videos = ds.videos[["subject", "video", "n_frames"]].sort_values(["subject", "video"])
        subjects = sorted(videos["subject"].unique())
        if setup.max_folds is not None:
            subjects = subjects[: setup.max_folds]
        videos = videos[videos["subject"].isin(subjects)]
        videos = common.plumbing_videos(videos, setup.limit_steps).reset_index(drop=True)
        gt = ds.annotations[ds.annotations["video"].isin(videos["video"])].reset_index(drop=True)
        kinds = [kind for kind in setup.expressions if kind in ks]
        if not kinds:  # e.g. micro asked of a corpus without micro-expressions: run what exists
            kinds = [kind for kind in TYPES if kind in ks]
            print(
                f"note: {common.dataset_label(name)} has no {' or '.join(setup.expressions)}-expressions; "
                f"running {', '.join(kinds)} instead"
            )
        specs = {
            kind: SoftnetFeatureSpec(k=ks[kind], flow=setup.flow, geometry=setup.geometry) for kind in kinds
        }
        paths = extract(ds, root / name, videos["video"], specs, setup, progress=progress)
        out[name] = Prepared(
            name=name,
            dataset=ds,
            root=root / name,
            k=ks,
            videos=videos,
            gt=gt,
            specs=specs,
            paths=paths,
            mean_duration=means,
        )
    return out


def extract(ds, root: Path, videos, specs: dict, setup: Setup, *, progress: bool = True) -> dict:
    """Features of ``videos`` for each ``{type: spec}``: ``{(video, type): path}``.

    Only missing files are computed (``setup.workers`` processes, one video each; the
    longest videos go first so that the workers finish together).
    """
    paths, jobs, queued = {}, [], set()
    for kind, spec in specs.items():
        folder = runtime.cache_dir("features", "softnet", ds.name, spec.key())
        for video in videos:
            path = folder / f"{safe_name(video)}-{video_stamp(ds, video)}.npy"
            paths[(video, kind)] = path
            if path not in queued:
                queued.add(path)
                jobs.append(FeatureJob(DatasetVideo(ds.name, str(root), video, setup.crop_size), spec, path))
    jobs.sort(key=lambda j: -ds.n_frames(j.source.video))
    compute_features(
        jobs, workers=setup.workers, progress=progress, desc=f"features {common.dataset_label(ds.name)}"
    )
    return paths


def with_k(prep: Prepared, setup: Setup, kind: str, k: int, *, progress: bool = True) -> Prepared:
    """``prep`` with another window length for ``kind`` (features extracted as needed)."""
    spec = dataclasses.replace(prep.specs[kind], k=int(k))
    paths = extract(prep.dataset, prep.root, prep.videos["video"], {kind: spec}, setup, progress=progress)
    return dataclasses.replace(
        prep, k={**prep.k, kind: int(k)}, specs={**prep.specs, kind: spec}, paths={**prep.paths, **paths}
    )


def k_table(prepared: dict) -> pd.DataFrame:
    """k per dataset and type, with the mean duration it came from and the paper's k."""
    rows = []
    for name, prep in prepared.items():
        for kind in TYPES:
            if kind in prep.k:
                rows.append(
                    {
                        "dataset": common.dataset_label(name),
                        "type": kind,
                        "expressions": int((prep.dataset.annotations["type"] == kind).sum()),
                        "mean N (frames)": round(prep.mean_duration.get(kind, float("nan")), 2),
                        "k (ours)": prep.k[kind],
                        "k (paper)": PAPER_K[name][kind],
                    }
                )
    return pd.DataFrame(rows).set_index(["dataset", "type"])


def corpus_table(prepared: dict) -> pd.DataFrame:
    """Subjects, videos, frames and expressions of each prepared dataset."""
    rows = []
    for name, prep in prepared.items():
        rows.append(common.corpus_row(name, prep))
    return pd.DataFrame(rows).set_index("dataset")
