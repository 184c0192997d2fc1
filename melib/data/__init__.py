"""Datasets: loaders for the real release layouts and the synthetic corpus that mimics them."""

# Submodules, imported on use (``from melib.data import datasets``) so that importing the
# package stays cheap: datasets (load_dataset, load_from_data_root, Dataset, DatasetError),
# synth (generate, ensure_corpus, naive_flow_detector_f1), synth_check (the naive spotter),
# synth_manifest (load_manifest), synth_faces (identities), facs (AU templates, emotions).
__all__ = ["datasets", "facs", "synth", "synth_check", "synth_faces", "synth_manifest"]
