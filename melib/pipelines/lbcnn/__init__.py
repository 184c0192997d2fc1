"""LBCNN end to end: Pan, Xie & Wang, "Local Bilinear Convolutional Neural Network for
spotting macro- and micro-expression intervals in long video sequences" (MEGC 2020).

Each notebook cell calls one or two functions of this package:

1. :func:`configure` resolves the notebook parameters against the profile into a
   :class:`Setup` (``describe()`` lays this run beside the paper, :func:`caveats` lists
   the departures) (``config``);
2. :func:`prepare` loads each dataset, tracks the face and caches the sampled inputs
   (face crop + ROI mosaic) of every video (``data``);
3. :func:`run` trains one LBCNN per LOSO fold on class-balanced samples, classifies
   every grid frame of the held-out videos, and turns runs of frames into intervals
   with :func:`spot_video` (``run``, ``spotting``);
4. :func:`frame_metrics`, :func:`spotting_tables`, :func:`table_iii` score them
   (frame accuracy / UF1 / UAR, the MEGC metric on all videos, the paper's Table III)
   (``tables``);
5. figures: :func:`input_figure`, :func:`timeline_figure`, :func:`gradcam_figure`,
   :func:`tsne_figure`, :func:`loss_figure` (``figures``).

Paper vs authors' code, and what is exposed
-------------------------------------------
* Trunk: the paper's shallow AlexNet-like stream (``trunk="alexnet_like"``, default)
  or the code's ResNet-18 (``"resnet18"``); both from scratch here. Our addition: a
  BatchNorm after each AlexNet-like convolution (``batch_norm=True``); without it the
  from-scratch B-CNN stayed at chance level (see :mod:`melib.models.lbcnn`).
* Loss: the paper does not name one; it follows Lin et al.'s B-CNN, a linear
  classifier trained on the class labels, which we read as softmax cross-entropy
  (``loss="ce"``, default). The code trains MSE on one-hot targets (``loss="mse"``).
* Optimiser: the paper gives none; the code's Adam (lr 1e-3) is used. The code's
  StepLR(50, 0.5) over 300 epochs is not reproduced (constant lr); ``full`` keeps its
  300 epochs.
* Class balance: the code undersamples every class to the smallest one
  (``balance="undersample"``); by default we resample every class to the same count
  (``"oversample"``: the largest class, capped by the profile's ``max_per_class``).
* Spotting: runs of at least ``min_run_length`` (2) consecutive classified frames of
  one class become intervals; the length filters of the code (CAS(ME)² micro 6-16
  frames, macro >= 17; SAMM-LV micro 20-105, macro >= 106; scaled by fps for other
  frame rates) keep a run only when its length fits its own class
  (``length_rule="own_class"``, default), or give any expression run the type its
  length implies (``"by_length"``).
* Counting: the MEGC rules on every video (one ground truth matches at most one
  prediction). The code's count, where one ground truth can be matched several
  times, is shown only as a labelled aside (:func:`double_counting_table`).
"""

import sys

from melib.pipelines.lbcnn.config import *  # noqa: F403
from melib.pipelines.lbcnn.configure import *  # noqa: F403
from melib.pipelines.lbcnn.data import *  # noqa: F403
from melib.pipelines.lbcnn.figures import *  # noqa: F403
from melib.pipelines.lbcnn.run import *  # noqa: F403
from melib.pipelines.lbcnn.spotting import *  # noqa: F403
from melib.pipelines.lbcnn.tables import *  # noqa: F403

_PARTS = ("config", "configure", "data", "figures", "run", "spotting", "tables")
# sys.modules, not attributes: the function `run` shadows the module of that name.
__all__ = [name for part in _PARTS for name in sys.modules[f"{__name__}.{part}"].__all__]
