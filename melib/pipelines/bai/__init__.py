"""Bai 2020 end to end: a Grad-CAM-guided ResNet-50 on frames, then LSTM/GRU/TCN over sequences.

Mengjiong Bai, "Detection of micro-expression recognition based on spatio-temporal
modelling and spatial attention" (ICMI 2020 Doctoral Consortium), a doctoral proposal
that reports a frame-level and an LSTM experiment on SMIC (section 3) and plans GRU and
TCN decoders, spatial attention and Eulerian magnification (section 4). In the order of
the notebook: :mod:`.config` (``configure``, ``caveats``), :mod:`.paper`, :mod:`.data`
(``prepare``), :mod:`.gradcam` (the choice of l_s), :mod:`.run` (frame level, encoding,
sequence level; ``run`` chains them), :mod:`.tables` and :mod:`.figures`.
"""

import sys

from melib.models.bai import DECODERS, EXPERIMENTS, STAGES
from melib.pipelines.bai.config import *  # noqa: F403
from melib.pipelines.bai.configure import *  # noqa: F403
from melib.pipelines.bai.data import *  # noqa: F403
from melib.pipelines.bai.figures import *  # noqa: F403
from melib.pipelines.bai.frames import *  # noqa: F403
from melib.pipelines.bai.gradcam import *  # noqa: F403
from melib.pipelines.bai.paper import *  # noqa: F403
from melib.pipelines.bai.run import *  # noqa: F403
from melib.pipelines.bai.sequences import *  # noqa: F403
from melib.pipelines.bai.tables import *  # noqa: F403

_PARTS = (
    "config",
    "configure",
    "data",
    "figures",
    "frames",
    "gradcam",
    "paper",
    "run",
    "sequences",
    "tables",
)
# sys.modules, not attributes: the function `run` shadows the module of that name.
__all__ = [name for part in _PARTS for name in sys.modules[f"{__name__}.{part}"].__all__] + [
    "DECODERS",
    "EXPERIMENTS",
    "STAGES",
]
