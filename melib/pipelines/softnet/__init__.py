"""SOFTNet end to end: spotting macro- and micro-expressions in long videos.

Liong, See & Wong, "Shallow optical flow three-stream CNN for macro- and
micro-expression spotting from long videos" (ICASSP 2021).

Each notebook cell calls one or two of these functions:

1. :func:`configure` turns the notebook parameters and the profile into a :class:`Setup`
   (what runs, and how it departs from the paper; :func:`caveats` says it in words);
2. :func:`prepare` loads each dataset, derives k, tracks the face and extracts the
   per-video features (cached, in parallel);
3. :func:`run` trains one model per LOSO fold and expression type, scores the held-out
   subject's videos and spots intervals (:class:`RunResult`);
4. :func:`evaluate` scores the intervals with the MEGC metric; :func:`table2` and
   :func:`table1` lay ours beside the paper's numbers;
5. the control without a network (:func:`without_softnet`), ablations
   (:func:`ablation_pseudo_labels`, :func:`ablation_k`, :func:`ablation_backbones`) and
   figures (:func:`feature_figure`, :func:`loss_figure`, :func:`timeline_figure`,
   :func:`gradcam_figure`, :func:`tsne_figure`).

Paper vs the authors' code, and what is exposed:

* k = int((N+1)/2) with N the mean (offset - onset) of the expression type over the
  dataset (the authors' code; the paper's footnote writes (N+1)/2). ``k`` overrides it.
* Negatives: the paper keeps "1 of every 2" non-expression frames
  (``negative_sampling="every_other"``, our default); the code drops about half at
  random (``"random"``).
* Augmentation (micro only): every positive also gets a flipped, a 7x7-blurred and a
  noisy copy. The paper gives the noise as N(0, 1) (``noise_std=1.0``); it is added to
  the raw input before the per-channel min-max normalisation.
* Spotting: the threshold p of T = mean + p (max - mean) is ``threshold`` (0.55).
* Evaluation: MEGC rules on every video (default) and the authors' variant that
  scores a type only on the videos containing it; AP@[.5:.95] ranks spotted intervals
  by their smoothed peak score (the authors' code gives all the same confidence).
"""

import sys

from melib.pipelines.softnet.ablations import *  # noqa: F403
from melib.pipelines.softnet.config import *  # noqa: F403
from melib.pipelines.softnet.configure import *  # noqa: F403
from melib.pipelines.softnet.data import *  # noqa: F403
from melib.pipelines.softnet.figures import *  # noqa: F403
from melib.pipelines.softnet.paper import *  # noqa: F403
from melib.pipelines.softnet.run import *  # noqa: F403
from melib.pipelines.softnet.tables import *  # noqa: F403
from melib.pipelines.softnet.windows import *  # noqa: F403

_PARTS = ("ablations", "config", "data", "figures", "paper", "run", "tables", "windows")
# sys.modules, not attributes: the function `run` shadows the module of that name.
__all__ = [name for part in _PARTS for name in sys.modules[f"{__name__}.{part}"].__all__]
