"""Face crops of a dataset video, as a picklable recipe for feature workers.

A worker process receives a :class:`DatasetVideo` (dataset key, root, video, crop
size) rather than frames: it opens the dataset, finds the face box and landmarks
(``melib.face``, cached on disk) and decodes frames itself, one at a time. Only this
module and what it imports are loaded in the worker, which keeps its start-up short.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

__all__ = ["open_dataset", "DatasetVideo"]


@functools.lru_cache(maxsize=8)
def open_dataset(name: str, root: str):
    """``load_dataset`` memoised per process (workers reuse it for every video)."""
    from melib.data.datasets import load_dataset

    return load_dataset(name, root)


@dataclass(frozen=True)
class DatasetVideo:
    """Calling it returns ``(n_frames, landmarks in crop coordinates, crop iterator)``."""

    dataset: str
    root: str
    video: str
    size: int

    def __call__(self):
        from melib.face import iter_crops, track_video

        ds = open_dataset(self.dataset, self.root)
        track = track_video(ds, self.video)
        crops = iter_crops(ds, self.video, track, size=self.size, gray=True)
        return ds.n_frames(self.video), track.landmarks_in_crop(self.size), crops
