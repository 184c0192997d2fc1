"""What the five paper pipelines share: the base profile and setup, the synthetic-corpus
rule, the parameter validators, dataset labels, table rounding, and the hooks for
several seeds, a step limit and fold execution.

Vocabulary (CONTRIBUTING.md has the full naming table):

* ``configure(*, seed, profile, data_root, device, ..., limit_steps)`` returns the
  paper's ``Setup`` (a subclass of :class:`BaseSetup`);
* a parameter left at ``None`` (:data:`FROM_PROFILE`) takes the profile's value; a cap
  set to ``"all"`` (:data:`NO_CAP`) is lifted, as in the paper;
* ``datasets`` when a run may cover several datasets, ``dataset`` when it covers one;
  ``max_folds`` caps the LOSO folds; ``threshold`` is the score threshold of spotting;
* ``run(...)`` is each paper's entry point and returns its ``RunResult`` objects.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from melib import runtime
from melib.pipelines import validation
from melib.pipelines.validation import *  # noqa: F403 (re-exported: see __all__)
from melib.pipelines.validation import _fail, _is_number, whole_number

__all__ = [
    *validation.__all__,
    "CORPUS_SEED",
    "DATASET_LABELS",
    "BaseProfile",
    "BaseSetup",
    "dataset_label",
    "data_root_for",
    "check_common",
    "start",
    "train_config",
    "require_datasets",
    "corpus_row",
    "round_table",
    "round_value",
    "timing_table",
    "departures",
    "seed_list",
    "over_seeds",
    "PLUMBING_CORPUS",
    "PLUMBING_MAX_FOLDS",
    "PLUMBING_MAX_VIDEOS",
    "is_plumbing",
    "plumbing_profile",
    "plumbing_folds",
    "plumbing_videos",
    "plumbing_caveat",
]

CORPUS_SEED = 0
"""The synthetic corpus is always generated with this seed: the notebook's ``seed``
varies the training (weights, sampling, t-SNE), never the data, so runs with different
seeds are measured on the same videos."""

DATASET_LABELS = {
    "casme_sq": "CAS(ME)²",
    "samm_lv": "SAMM-LV",
    "smic_e_long": "SMIC-E-Long",
    "casme2": "CASME II",
    "samm": "SAMM",
    "smic_hs": "SMIC-HS",
    "megc2019": "MEGC2019 composite",
}


def dataset_label(key: str) -> str:
    """The printed name of a dataset key (``samm_lv`` -> ``SAMM-LV``)."""
    return DATASET_LABELS.get(key, key)


# ----------------------------------------------------------------- profile and setup


@dataclass(frozen=True)
class BaseProfile:
    """What every profile names: the synthetic corpus preset it runs on. Each paper's
    ``Profile`` adds the caps that cost time (epochs, folds, input size...)."""

    corpus: str


@dataclass
class BaseSetup:
    """The fields every paper's resolved ``Setup`` starts with. ``limits`` is the
    profile the run was resolved against; ``limit_steps`` caps the optimiser steps of
    every training (``None``: no cap)."""

    seed: int
    profile: str
    data_root: Path | None
    device: str

    @property
    def on_synthetic_corpus(self) -> bool:
        return self.data_root is None

    def corpus_root(self) -> Path:
        """The data root this run reads: the user's, or the synthetic corpus."""
        return data_root_for(self)

    def make_train_config(self, **fields):
        """A :class:`~melib.training.TrainConfig` with this run's seed, device and step
        limit (``limit_steps``) and the given ``fields``."""
        limit = getattr(self, "limit_steps", None)
        return train_config({"seed": self.seed, "device": self.device, "limit_steps": limit}, **fields)


def data_root_for(setup) -> Path:
    """The user's ``data_root``, or the profile's synthetic corpus generated with
    :data:`CORPUS_SEED` (silently, so that a cold cache prints what a warm one does)."""
    if setup.data_root is not None:
        return Path(setup.data_root)
    from melib.data.synth import ensure_corpus

    return ensure_corpus(setup.limits.corpus, CORPUS_SEED, progress=False)


# ------------------------------------------------------------------------- validators


def check_common(*, seed, profile, device, data_root, limit_steps=None) -> dict:
    """Validate the parameters every notebook has; returns them normalised."""
    seed = whole_number("seed", seed, minimum=0, fix="any whole number picks a reproducible run")
    if profile not in runtime.PROFILES:
        _fail("profile", profile, f"use one of {', '.join(runtime.PROFILES)}")
    if not isinstance(device, str) or not device:
        _fail("device", device, "use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if data_root is not None:
        if not isinstance(data_root, (str, Path)):
            _fail("data_root", data_root, "use the path of a folder with one subfolder per dataset, or None")
        root = Path(data_root).expanduser()
        if not root.is_dir():
            _fail(
                "data_root",
                str(data_root),
                "no such folder; pass the folder that holds one subfolder per "
                "dataset (casme_sq/, samm_lv/, ...), or None for the synthetic corpus",
            )
        data_root = root
    limit_steps = whole_number(
        "limit_steps",
        limit_steps,
        minimum=1,
        allow_none=True,
        fix="optimiser steps per training; None trains the full schedule",
    )
    return {
        "seed": seed,
        "profile": profile,
        "device": device,
        "data_root": data_root,
        "limit_steps": limit_steps,
    }


def start(profiles: dict, seed, profile, device, data_root, limit_steps, resolve=None, seeded=True):
    """The opening every ``configure`` shares: the common parameters checked
    (:func:`check_common`), the random generators seeded (unless ``seeded`` is False), and
    the profile the run resolves against, ``resolve(profiles[profile], limit_steps)``
    (default :func:`plumbing_profile`: the tiny corpus for a plumbing run). Returns the
    checked fields and that profile."""
    base = check_common(
        seed=seed, profile=profile, device=device, data_root=data_root, limit_steps=limit_steps
    )
    if seeded:
        runtime.seed_everything(base["seed"])
    return base, (resolve or plumbing_profile)(profiles[profile], base["limit_steps"])


def train_config(base: dict, **fields):
    """A :class:`~melib.training.TrainConfig` with the run's seed, device and step limit
    (``base``: the fields :func:`check_common` returned) and the given ``fields``."""
    from melib.training import TrainConfig

    return TrainConfig(seed=base["seed"], device=base["device"], max_steps=base["limit_steps"], **fields)


def require_datasets(data_root, keys: Iterable[str], name: str = "data_root") -> None:
    """With a user's ``data_root``, each dataset folder the run reads must be in it (the
    synthetic corpus, ``data_root=None``, has them all)."""
    if data_root is None:
        return
    root = Path(data_root)
    missing = [key for key in keys if not (root / key).is_dir()]
    if missing:
        present = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name in DATASET_LABELS)
        _fail(
            name,
            str(data_root),
            f"it has no {', '.join(k + '/' for k in missing)} folder (found: "
            f"{', '.join(present) or 'no dataset folder'}); pass the folder that holds "
            f"{', '.join(k + '/' for k in keys)}, or None for the synthetic corpus",
        )


# ----------------------------------------------------------------------------- tables


def corpus_row(name: str, prep) -> dict:
    """One spotting dataset's size, for the corpus tables: ``prep`` has ``dataset``
    (with ``fps``), ``subjects``, ``videos`` (with ``n_frames``) and ``gt`` (with ``type``)."""
    return {
        "dataset": dataset_label(name),
        "fps": prep.dataset.fps,
        "subjects": len(prep.subjects),
        "videos": len(prep.videos),
        "frames": int(prep.videos["n_frames"].sum()),
        "micro": int((prep.gt["type"] == "micro").sum()),
        "macro": int((prep.gt["type"] == "macro").sum()),
    }


def round_value(value, digits: int = 4):
    """A metric rounded for print (NaN and non-numbers pass through)."""
    if _is_number(value) and math.isfinite(float(value)):
        return round(float(value), digits)
    return value


def round_table(table: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Round every float column (ints and labels are left alone), so that printed tables
    are stable across platforms."""
    out = table.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = out[column].round(digits)
        elif out[column].dtype == object:
            out[column] = out[column].map(lambda v: round_value(v, digits) if isinstance(v, float) else v)
    return out


def timing_table(runs: list) -> pd.DataFrame:
    """Per run: folds trained, folds read from checkpoints, and seconds."""
    return pd.DataFrame(
        [
            {
                "run": r.name,
                "folds trained": r.trained_folds,
                "folds from checkpoints": len(r.checkpoints) - r.trained_folds,
                "seconds": round(r.seconds, 1),
            }
            for r in runs
        ]
    ).set_index("run")


# ------------------------------------------------------------------------------ hooks

PLUMBING_CORPUS = "tiny"
PLUMBING_MAX_FOLDS = 2
PLUMBING_MAX_VIDEOS = 2
"""A plumbing run (``limit_steps`` set) keeps every setting of its profile (architectures,
input sizes, flow settings, optimisers, losses) but runs on the tiny corpus, with at
most this many LOSO folds and videos per dataset, so that the paper-scale path can be
exercised end to end in minutes on a CPU."""


def is_plumbing(setup) -> bool:
    """True for a plumbing run: the numbers it prints test the code, not the method."""
    return getattr(setup, "limit_steps", None) is not None


def plumbing_profile(profile, limit_steps):
    """The profile a run resolves against: the tiny corpus for a plumbing run."""
    if limit_steps is None:
        return profile
    return dataclasses.replace(profile, corpus=PLUMBING_CORPUS)


def plumbing_folds(max_folds: int | None, limit_steps) -> int | None:
    """The fold cap of a run: at most :data:`PLUMBING_MAX_FOLDS` for a plumbing run."""
    if limit_steps is None:
        return max_folds
    return PLUMBING_MAX_FOLDS if max_folds is None else min(max_folds, PLUMBING_MAX_FOLDS)


def plumbing_videos(videos: pd.DataFrame, limit_steps, subject: str = "subject") -> pd.DataFrame:
    """At most :data:`PLUMBING_MAX_VIDEOS` videos for a plumbing run, from different subjects
    first (so that leave-one-subject-out still has a subject to train on)."""
    if limit_steps is None or len(videos) <= PLUMBING_MAX_VIDEOS:
        return videos
    firsts = videos.drop_duplicates(subject).head(PLUMBING_MAX_VIDEOS)
    rest = videos.drop(firsts.index).head(PLUMBING_MAX_VIDEOS - len(firsts))
    return pd.concat([firsts, rest]).sort_index()


def plumbing_caveat(setup) -> str | None:
    """The line ``caveats()`` prints for a plumbing run (None otherwise)."""
    if not is_plumbing(setup):
        return None
    return (
        f"- plumbing run (limit_steps={setup.limit_steps}): at most {setup.limit_steps} optimiser steps per "
        f"training, the '{PLUMBING_CORPUS}' synthetic corpus, at most {PLUMBING_MAX_FOLDS} LOSO folds and "
        f"{PLUMBING_MAX_VIDEOS} videos per dataset; every other setting is the profile's. The numbers test "
        "that the code runs, not the method"
    )


def departures(lines: list, setup, plumbing: str, same: str) -> str:
    """What a paper's ``caveats()`` prints: its ``lines`` (for a plumbing run, followed by
    :func:`plumbing_caveat` and the paper's own ``plumbing`` line) under a heading, or
    ``same`` when the run departs from nothing."""
    if is_plumbing(setup):
        lines = [*lines, plumbing_caveat(setup), plumbing]
    if not lines:
        return same
    return "Departures from the paper in this run:\n" + "\n".join(lines)


def seed_list(seeds) -> tuple[int, ...]:
    """``3`` -> (0, 1, 2); ``[4, 7]`` -> (4, 7); each checked as a seed."""
    if _is_number(seeds) and not isinstance(seeds, float):
        count = whole_number("seeds", seeds, minimum=1)
        return tuple(range(count))
    try:
        values = tuple(seeds)
    except TypeError:
        _fail("seeds", seeds, "use a count (3 means seeds 0, 1, 2) or a list of seeds")
    if not values or len(set(values)) != len(values):
        _fail("seeds", seeds, "use a non-empty list of distinct seeds")
    return tuple(whole_number("seeds", s, minimum=0) for s in values)


@dataclass
class SeedRuns:
    """One result per seed, in the order the seeds were given."""

    seeds: tuple
    results: list = field(default_factory=list)

    def __iter__(self):
        return iter(zip(self.seeds, self.results))

    def values(self, metric: Callable) -> np.ndarray:
        """``metric(result)`` for every seed, as an array (for a mean and an interval)."""
        return np.array([metric(r) for r in self.results], dtype=float)


def over_seeds(run_one: Callable[[int], object], seeds) -> SeedRuns:
    """Run ``run_one(seed)`` for every seed (caches make the repeated feature stages free,
    so only training repeats) and keep each result."""
    values = seed_list(seeds)
    return SeedRuns(values, [run_one(s) for s in values])
