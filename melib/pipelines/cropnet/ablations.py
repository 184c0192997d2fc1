"""The paper's ablations (Zhao, Chen & Luo 2021, section 4.5): Table 4 (preprocessing,
with and without CGPO) and figure 5 (the N_key sweep), each row a full LOSO run."""

from __future__ import annotations

import pandas as pd

from melib.features.residual_sums import METHODS
from melib.pipelines import common
from melib.pipelines.cropnet.config import METHOD_LABELS, Setup
from melib.pipelines.cropnet.data import ProtocolData
from melib.pipelines.cropnet.paper import NOT_TRANSCRIBED
from melib.pipelines.cropnet.run import RunResult, run

__all__ = ["ablation_table4", "nkey_sweep"]


def _same_run(reference: RunResult | None, wanted: Setup, protocol: str) -> bool:
    return (
        reference is not None
        and reference.protocol == protocol
        and reference.setup == wanted.for_protocol(protocol)
    )


def ablation_table4(
    data: ProtocolData, setup: Setup, reference: RunResult | None = None, progress: bool = True
) -> tuple[pd.DataFrame, list[RunResult]]:
    """Table 4: ARS / RRS / Farneback / TV-L1 with CGPO, and ARS without CGPO.

    Every row trains with the main run's epochs and folds; ``reference`` (a run with the
    same settings) is reused for its row instead of training it again.
    """
    rows, runs = [], []
    variants = [(m, True) for m in METHODS] + [("ars", False)]
    for method, with_cgpo in variants:
        name = f"{METHOD_LABELS[method]}{'' if with_cgpo else ' w/o CGPO'}"
        wanted = setup.with_(preprocessing=method, cgpo=with_cgpo)
        result = (
            reference
            if _same_run(reference, wanted, data.protocol)
            else run(data, wanted, name=name, progress=progress)
        )
        runs.append(result)
        s = result.scores.loc["all"]
        rows.append(
            {
                "preprocessing": METHOD_LABELS[method],
                "CGPO": "yes" if with_cgpo else "no",
                "accuracy": s["accuracy"],
                "UF1": s["UF1"],
                "UAR": s["UAR"],
                "paper (Table 4)": NOT_TRANSCRIBED,
            }
        )
    return common.round_table(pd.DataFrame(rows).set_index(["preprocessing", "CGPO"])), runs


def nkey_sweep(
    data: ProtocolData, setup: Setup, values=None, reference: RunResult | None = None, progress: bool = True
) -> tuple[pd.DataFrame, list[RunResult]]:
    """Figure 5: UF1 and UAR against N_key (ARS, CGPO), with the main run's budget."""
    values = tuple(values or setup.limits.nkey_sweep)
    base = setup.with_(preprocessing="ars", cgpo=True)
    rows, runs = [], []
    for n in values:
        wanted = base.with_(n_key=int(n))
        result = (
            reference
            if _same_run(reference, wanted, data.protocol)
            else run(data, wanted, name=f"N_key={n}", progress=progress)
        )
        runs.append(result)
        s = result.scores.loc["all"]
        rows.append({"N_key": int(n), "UF1": s["UF1"], "UAR": s["UAR"], "paper (figure 5)": NOT_TRANSCRIBED})
    return common.round_table(pd.DataFrame(rows).set_index("N_key")), runs
