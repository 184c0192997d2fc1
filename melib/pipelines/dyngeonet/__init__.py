"""DynGeoNet end to end: Tran, Vo & Zhao, "DynGeoNet: Fusion network for micro-expression spotting" (2021).

Each notebook cell calls one or two functions of this package (no public code exists,
so the paper is the specification):

1. :func:`configure` resolves the notebook parameters against the profile into a
   :class:`Setup` (``describe()`` lays the run beside the paper, :func:`caveats` lists
   the departures in words) -- ``config``;
2. :func:`prepare` loads each long-video dataset, cuts it into sliding windows of L
   frames and caches, per video, every window's dynamic image of the eye, nose and
   mouth regions, its 67-d geometric vector (onset = first frame, apex = middle frame)
   and its apex face crop (for the VGG16-on-frames baseline) -- ``data``;
3. :func:`run` trains one network per leave-one-subject-out fold (the branch asked for,
   and the two others as the DynNet / GeoNet ablations), scores every window of the
   held-out videos; :func:`run_cross_dataset` trains on two datasets and tests on the
   third (setups A, B, C) for DynGeoNet and the VGG16-on-frames baseline -- ``run``;
4. :func:`evaluate` merges the positive windows into intervals and scores them with the
   MEGC metric (IoU >= 0.5) -- ``tables``; :func:`table1` and :func:`table2` put them
   under the paper's Tables 1 and 2 -- ``paper``;
5. figures: :func:`landmark_figure`, :func:`dynamic_image_figure`,
   :func:`geometry_figure`, :func:`loss_figure`, :func:`timeline_figure`,
   :func:`gradcam_figure`, :func:`tsne_figure` -- ``figures``.
"""

import sys

from melib.pipelines.dyngeonet.config import *  # noqa: F403
from melib.pipelines.dyngeonet.configure import *  # noqa: F403
from melib.pipelines.dyngeonet.data import *  # noqa: F403
from melib.pipelines.dyngeonet.figures import *  # noqa: F403
from melib.pipelines.dyngeonet.paper import *  # noqa: F403
from melib.pipelines.dyngeonet.run import *  # noqa: F403
from melib.pipelines.dyngeonet.tables import *  # noqa: F403

_PARTS = ("config", "configure", "data", "figures", "paper", "run", "tables")
# sys.modules, not attributes: the function `run` shadows the module of that name.
__all__ = [name for part in _PARTS for name in sys.modules[f"{__name__}.{part}"].__all__]
