"""CropNet end to end (Zhao, Chen & Luo 2021): residual sums, CGPO crops and ReXNet.

Zhao, Chen & Luo, "Micro-expression recognition based on pixel residual sum and cropped
Gaussian pyramid" (Frontiers in Neurorobotics, 2021): residual-sum preprocessing (ARS /
RRS), the Cropped Gaussian Pyramid with Overlapping (CGPO) and CropNet, on CASME II
(5 classes) and the MEGC2019 composite. Each notebook cell calls one or two of:

1. :func:`configure` resolves the notebook parameters into a :class:`Setup`;
   ``setup.describe()`` lays it beside the paper's settings, :func:`caveats` lists the
   departures and :func:`paper_numbers` what the paper gives and leaves open
   (``config``, ``paper``);
2. :func:`load_protocol` loads ``casme2_5class`` or ``megc2019`` as a labelled table and
   :func:`prepare_images` computes (or reads from the cache) one image per clip (``data``);
3. :func:`run` trains one CropNet per LOSO fold and predicts the held-out subjects
   (``run``); :func:`scores_table` lays the scores beside the paper's Tables 2 and 3
   (``tables``);
4. the ablations :func:`ablation_table4` and :func:`nkey_sweep` (``ablations``), and the
   figures (``figures``).
"""

import sys

from melib.features.residual_sums import METHODS
from melib.pipelines.cropnet.ablations import *  # noqa: F403
from melib.pipelines.cropnet.config import *  # noqa: F403
from melib.pipelines.cropnet.data import *  # noqa: F403
from melib.pipelines.cropnet.figures import *  # noqa: F403
from melib.pipelines.cropnet.paper import *  # noqa: F403
from melib.pipelines.cropnet.run import *  # noqa: F403
from melib.pipelines.cropnet.tables import *  # noqa: F403

_PARTS = ("ablations", "config", "data", "figures", "paper", "run", "tables")
# sys.modules, not attributes: the function `run` shadows the module of that name.
__all__ = [name for part in _PARTS for name in sys.modules[f"{__name__}.{part}"].__all__] + ["METHODS"]
