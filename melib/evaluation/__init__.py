"""Scoring: the MEGC spotting metric (``spotting``), recognition metrics
(``recognition``), evaluation protocols (``protocols``), spotting post-processing shared
by the papers (``postprocess``), a labelled teaching baseline (``baseline``) and the
``melib eval`` handlers (``cli``).
"""
