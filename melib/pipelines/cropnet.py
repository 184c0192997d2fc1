"""CropNet end to end: Zhao, Chen & Luo, "Micro-expression recognition based on pixel
residual sum and cropped Gaussian pyramid" (Frontiers in Neurorobotics, 2021; seed 004):
residual-sum preprocessing (ARS / RRS), the Cropped Gaussian Pyramid with Overlapping
(CGPO) and CropNet, on CASME II (5 classes) and the MEGC2019 composite.

Each notebook cell calls one or two functions of this module:

1. :func:`configure` resolves the notebook parameters against the profile into a
   :class:`CropNetSetup`; ``setup.describe()`` lays it beside the paper's settings;
2. :func:`load_protocol` loads ``casme2_5class`` or ``megc2019`` as a labelled table;
3. :func:`prepare_images` computes (or reads from the cache) one image per clip;
4. :func:`run_protocol` trains one CropNet per LOSO fold and predicts the held-out
   subjects; :func:`scores_table` lays the scores beside the paper's (whose numbers the
   seed text does not carry: they were images);
5. ablations :func:`ablation_table4` (preprocessing, CGPO) and :func:`nkey_sweep`
   (figure 5), and figures :func:`preprocessing_figure`, :func:`cgpo_figure`,
   :func:`confusion_figure`, :func:`gradcam_figure`, :func:`tsne_figure`.

What the paper leaves open is chosen here and listed in ``PAPER_SILENT``; the
notebook prints it.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset as TorchDataset

from melib import runtime
from melib.data.datasets import MEGC2019_EMOTION_MAP, load_from_data_root
from melib.evaluation.protocols import composite_loso_splits, loso_splits
from melib.evaluation.recognition import confusion_table, evaluate_recognition
from melib.features.cache import safe_name, stable_hash
from melib.features.cgpo import CGPOLayout, cgpo_crops
from melib.features.residual_sums import METHODS, ResidualSettings, load_image, preprocess_table
from melib.models.cropnet import PAPER_PARAMETERS_M, CropNet, CropNetConfig, CropView, count_parameters
from melib.training import TrainConfig, predict, progress_bar, train_folds

PROTOCOLS = ("casme2_5class", "megc2019")
# The paper's class order (section 4.3) and the MEGC2019 classes (section 4.4).
CLASSES = {
    "casme2_5class": ("others", "disgust", "happiness", "repression", "surprise"),
    "megc2019": ("negative", "positive", "surprise"),
}
PROTOCOL_LABELS = {"casme2_5class": "CASME II, 5 classes", "megc2019": "MEGC2019 composite"}
METHOD_LABELS = {"ars": "ARS", "rrs": "RRS", "farneback": "Farneback flow", "tvl1": "TV-L1 flow"}
SOURCE_LABELS = {"casme2": "CASME II", "samm": "SAMM", "smic_hs": "SMIC-HS"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# ------------------------------------------------------------------ the paper's numbers

NOT_GIVEN = "not given in the seed text"
# Numbers the seed text states in words (the tables and figures were images).
PAPER_GIVEN = {
    "key frames N_key": "5 (eq. 3-4; figure 5 picks it)",
    "clip end": "min(onset+10, offset) if apex-onset < 10, else min(apex, offset) (eq. 2)",
    "RRS range": "g_min 0, g_max 255 (eq. 7)",
    "CGPO": "320x320 input + 160x160 down-sample, 160x160 crops, α = 0.3, 10 sub-images",
    "position embeddings": "p1..p9 for z1..z9, N(0, variance 0.2) (eq. 8)",
    "parameters": f"about {PAPER_PARAMETERS_M} M",
    "augmentation": "brightness/contrast/saturation 20-180 %, hue ±0.5, grayscale p 0.2, "
                    "horizontal flip p 0.5, rotation ±15°",
    "loss / optimiser": "label-smoothing cross-entropy / AdamP",
    "composite": "SMIC-HS + CASME II + SAMM, negative / positive / surprise, LOSO",
    "hardware": "PyTorch 1.6, one Titan RTX (24 GB)",
}
# What the text does not give; our choice is in the second column.
PAPER_SILENT = {
    "Tables 1-4, figures 4-6 (all scores)": "images in the original: no numbers in the seed",
    "epochs, batch size, learning rate": "profile values (full: 60 epochs, batch 32, lr 1e-3)",
    "epochs per protocol": "CPU profiles: CASME II twice the composite's (half the clips per epoch)",
    "label-smoothing factor": "0.1",
    "z_i size, head conv width": "128, 256",
    "extractor shared across crops": "yes (one extractor and head for all 10 crops)",
    "how α places the crops": "α is the least overlap; crops spread evenly (3x3 on 320 px)",
    "which crop is z0": "the 160 px level (whole face); z1..z9 the 320 px 3x3 grid",
    "flow image encoding": "HSV colour code (hue direction, value magnitude)",
    "ImageNet pretraining": "not available offline: from scratch unless a local file is given",
}
# A compared method's published composite result (the MEGC2019 reference), not CropNet's.
REFERENCE_COMPOSITE = {"method": "STSTNet (Liong et al. 2019)", "UF1": 0.7353, "UAR": 0.7605}

# ------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Profile:
    corpus: str
    input_size: int
    backbone: str
    epochs: int  # CASME II, 5 classes
    composite_epochs: int  # MEGC2019 composite (about 3x the clips: as many updates in fewer epochs)
    batch_size: int
    max_folds: int | None
    tvl1_light: bool
    nkey_sweep: tuple
    tsne_size: int = 32


PROFILES = {
    # CI: the tiny corpus, 2 folds, 1 epoch, 64 px inputs (32 px crops), tiny ReXNet.
    "smoke": Profile(corpus="tiny", input_size=64, backbone="tiny", epochs=1, composite_epochs=1, batch_size=8,
                     max_folds=2, tvl1_light=True, nkey_sweep=(3, 5)),
    # The book: the book corpus, 3 grouped folds, 64 px inputs, slim ReXNet.
    "book": Profile(corpus="book", input_size=64, backbone="slim", epochs=16, composite_epochs=8, batch_size=8,
                    max_folds=3, tvl1_light=True, nkey_sweep=(1, 5, 9)),
    # Paper scale (a GPU): 320 px inputs, ReXNet-1.0x, every LOSO fold, default TV-L1.
    "full": Profile(corpus="full", input_size=320, backbone="rexnet_100", epochs=60, composite_epochs=60,
                    batch_size=32, max_folds=None, tvl1_light=False,
                    nkey_sweep=(1, 2, 3, 4, 5, 6, 7, 8, 9), tsne_size=64),
}


@dataclass(frozen=True)
class CropNetSetup:
    """The resolved run: the notebook's parameters after the profile's defaults."""

    seed: int
    profile: str
    data_root: Path | None
    device: str
    protocol: str
    preprocessing: str
    n_key: int
    alpha: float
    backbone: str
    cgpo: bool
    input_size: int
    epochs: int
    composite_epochs: int
    lr: float
    label_smoothing: float
    batch_size: int
    max_folds: int | None
    tvl1_light: bool
    pretrained: str | None
    position_embedding: str
    limits: Profile = field(repr=False)

    def with_(self, **changes) -> "CropNetSetup":
        return dataclasses.replace(self, **changes)

    def for_protocol(self, protocol: str) -> "CropNetSetup":
        """The setup a run of ``protocol`` trains with (its own epoch count)."""
        return self.with_(epochs=self.composite_epochs) if protocol == "megc2019" else self

    @property
    def crop_size(self) -> int:
        return self.input_size // 2

    def image_settings(self, method: str | None = None, n_key: int | None = None) -> ResidualSettings:
        return ResidualSettings(method=method or self.preprocessing, n_key=n_key or self.n_key,
                                size=self.input_size, tvl1_light=self.tvl1_light)

    def model_config(self, num_classes: int) -> CropNetConfig:
        return CropNetConfig(num_classes=num_classes, backbone=self.backbone, input_size=self.input_size,
                             crop_size=self.crop_size, alpha=self.alpha, cgpo=self.cgpo,
                             position_embedding=self.position_embedding, pretrained=self.pretrained)

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, optimizer="adamp",
                           loss="ce", seed=self.seed, device=self.device)

    def describe(self) -> pd.DataFrame:
        """What runs, beside what the paper says (or that it says nothing)."""
        layout = CGPOLayout(self.input_size, self.crop_size, self.alpha)
        model = CropNet(self.model_config(len(CLASSES[self.protocol])))
        rows = [
            ("data", str(self.data_root) if self.data_root else
             f"synthetic corpus '{self.limits.corpus}' (not the real datasets)", "CASME II, SAMM, SMIC-HS"),
            ("protocol", PROTOCOL_LABELS[self.protocol], "both, LOSO"),
            ("LOSO folds", "every subject" if self.max_folds is None else
             f"{self.max_folds} folds of grouped subjects", "every subject"),
            ("preprocessing", METHOD_LABELS[self.preprocessing], "ARS"),
            ("key frames N_key", str(self.n_key), "5"),
            ("input / crop", f"{self.input_size} / {self.crop_size} px", "320 / 160 px"),
            ("CGPO", f"{layout.n_crops} crops, α = {self.alpha:g}" if self.cgpo else "off", "10 crops, α = 0.3"),
            ("extractor", f"ReXNet '{self.backbone}', {'pretrained from ' + self.pretrained if self.pretrained else 'from scratch'}",
             "ReXNet, ImageNet-pretrained"),
            ("parameters", f"{count_parameters(model) / 1e6:.2f} M", f"about {PAPER_PARAMETERS_M} M"),
            ("position embeddings", f"{len(model.position)} ({self.position_embedding})", "9, N(0, 0.2)"),
            ("optimiser / loss", f"AdamP lr {self.lr:g} / CE, label smoothing {self.label_smoothing:g}",
             f"AdamP lr ? / label smoothing ? ({NOT_GIVEN})"),
            ("epochs / batch", f"{self.epochs} (CASME II), {self.composite_epochs} (composite) / "
             f"{self.batch_size}", NOT_GIVEN),
            ("TV-L1 (ablation)", "light (3 scales, 3 warps)" if self.tvl1_light else "OpenCV defaults", NOT_GIVEN),
            ("device", str(runtime.resolve_device(self.device)), "GPU"),
        ]
        return pd.DataFrame(rows, columns=["setting", "this run", "paper"]).set_index("setting")


def configure(seed: int = 0, profile: str = "book", data_root=None, device: str = "auto",
              protocol: str = "casme2_5class", preprocessing: str = "ars", n_key: int = 5,
              alpha: float = 0.3, backbone: str | None = None, cgpo: bool = True, epochs: int | None = None,
              lr: float = 1e-3, label_smoothing: float = 0.1, batch_size: int | None = None,
              input_size: int | None = None, max_folds: int | str | None = "profile",
              pretrained: str | None = None, position_embedding: str = "paper") -> CropNetSetup:
    """Resolve the notebook parameters; ``None`` (or ``"profile"``) means the profile's value."""
    runtime.check_profile(profile)
    runtime.seed_everything(seed)
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r}: use one of {', '.join(PROTOCOLS)}")
    if preprocessing not in METHODS:
        raise ValueError(f"preprocessing={preprocessing!r}: use one of {', '.join(METHODS)}")
    if not 0 <= alpha < 1:
        raise ValueError(f"alpha={alpha}: the CGPO overlap must be in [0, 1)")
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"label_smoothing={label_smoothing}: must be in [0, 1)")
    prof = PROFILES[profile]
    size = int(input_size or prof.input_size)
    if size % 4:
        raise ValueError(f"input_size={size}: CGPO halves it and crops half of it; use a multiple of 4")
    return CropNetSetup(
        seed=seed, profile=profile, data_root=Path(data_root).expanduser() if data_root else None,
        device=device, protocol=protocol, preprocessing=preprocessing, n_key=int(n_key), alpha=float(alpha),
        backbone=backbone or prof.backbone, cgpo=bool(cgpo), input_size=size,
        epochs=int(epochs or prof.epochs), composite_epochs=int(epochs or prof.composite_epochs),
        lr=float(lr), label_smoothing=float(label_smoothing),
        batch_size=int(batch_size or prof.batch_size),
        max_folds=prof.max_folds if max_folds == "profile" else max_folds,
        tvl1_light=prof.tvl1_light, pretrained=pretrained, position_embedding=position_embedding, limits=prof)


# ------------------------------------------------------------------------ the data


@dataclass
class ProtocolData:
    """One protocol's clips: the loaded dataset and a table with an integer ``label``."""

    protocol: str
    dataset: object
    table: pd.DataFrame  # standard columns + class, label, fold_key
    classes: tuple

    def class_counts(self) -> pd.DataFrame:
        counts = self.table.groupby(["dataset", "class"]).size().unstack(fill_value=0)
        counts = counts.reindex(columns=[c for c in self.classes if c in counts.columns])
        counts.index = [SOURCE_LABELS.get(i, i) for i in counts.index]
        counts["subjects"] = self.table.groupby("dataset")["fold_key"].nunique().to_numpy()
        counts.loc["total"] = counts.sum()
        return counts


def data_root_for(setup: CropNetSetup) -> Path:
    if setup.data_root is not None:
        return setup.data_root
    from melib.data.synth import ensure_corpus

    # The corpus seed is fixed: the notebook seed varies training, not the data.
    return ensure_corpus(setup.limits.corpus, 0, progress=False)


def load_protocol(setup: CropNetSetup, protocol: str | None = None) -> ProtocolData:
    """``casme2_5class``: CASME II's others/disgust/happiness/repression/surprise clips;
    ``megc2019``: the composite's negative/positive/surprise clips."""
    protocol = protocol or setup.protocol
    root = data_root_for(setup)
    if protocol == "casme2_5class":
        ds = load_from_data_root("casme2", root)
        table = ds.annotations.copy()
        table["class"] = table["emotion"].str.lower()
        table = table[table["class"].isin(CLASSES[protocol])]
        table["fold_key"] = table["subject"].astype(str)
    else:
        ds = load_from_data_root("megc2019", root)
        table = ds.annotations.copy()
        table["class"] = table["emotion"]
        table["fold_key"] = table["dataset"].astype(str) + "/" + table["subject"].astype(str)
    classes = CLASSES[protocol]
    table = table.reset_index(drop=True)
    table["label"] = table["class"].map({c: i for i, c in enumerate(classes)}).astype(int)
    if table["fold_key"].nunique() < 2:
        raise ValueError(f"{protocol}: LOSO needs clips from at least 2 subjects in {root}, found "
                         f"{table['fold_key'].nunique()}")
    return ProtocolData(protocol, ds, table, classes)


def prepare_images(data: ProtocolData, setup: CropNetSetup, method: str | None = None,
                   n_key: int | None = None, progress: bool = True) -> list[Path]:
    """Cache paths of one preprocessed image per clip (computed where missing)."""
    settings = setup.image_settings(method, n_key)
    return preprocess_table(data.dataset, data.table, settings, progress=progress,
                            desc=f"{METHOD_LABELS[settings.method]} images ({data.protocol})")


def clip_frames(data: ProtocolData, setup: CropNetSetup, index: int) -> dict:
    """The start and the last key frame of one clip (face crops), for figures."""
    from melib import face
    from melib.features.residual_sums import key_frames, select_clip

    row = data.table.iloc[index]
    video = str(row["video"])
    track = face.track_video(data.dataset, video)
    start, end = select_clip(row["onset"], row["apex"], row["offset"])
    keys = key_frames(start, end, setup.n_key)
    read = lambda i: face.crop(data.dataset.read_frame(video, i), track.box, setup.input_size, gray=False)  # noqa: E731
    return {f"start (frame {start})": read(start), f"last key frame ({keys[-1]})": read(keys[-1])}


# ------------------------------------------------------------------------ torch data


def augmentation():
    """The paper's four augmentations, in its order (section 3.2.1)."""
    from torchvision.transforms import v2

    return v2.Compose([
        v2.ColorJitter(brightness=(0.2, 1.8), contrast=(0.2, 1.8), saturation=(0.2, 1.8), hue=(-0.5, 0.5)),
        v2.RandomGrayscale(p=0.2),
        v2.RandomHorizontalFlip(p=0.5),
        v2.RandomRotation(degrees=15),
    ])


class ImageSet(TorchDataset):
    """(image, label) pairs read from the per-clip cache; augmented when ``train``."""

    def __init__(self, paths, labels, train: bool = False):
        self.paths = [Path(p) for p in paths]
        self.labels = np.asarray(labels, dtype=np.int64)
        self.transform = augmentation() if train else None
        self.mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, i: int) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(load_image(self.paths[i]))).permute(2, 0, 1)
        if self.transform is not None:
            x = self.transform(x)
        return (x.float() / 255 - self.mean) / self.std

    def __getitem__(self, i: int):
        return self.image(i), torch.tensor(self.labels[i])


def denormalise(x: torch.Tensor) -> np.ndarray:
    """(3, H, W) network input → (H, W, 3) float image in [0, 1] for display."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()


# ------------------------------------------------------------------------ training


@dataclass
class RunResult:
    """One LOSO run: predictions for every clip, scores, curves and where the models are."""

    name: str
    protocol: str
    setup: CropNetSetup
    predictions: pd.DataFrame  # sample, subject, dataset, true, predicted, fold
    evaluation: object  # RecognitionResult
    confusion: pd.DataFrame
    histories: dict
    checkpoints: dict  # fold -> Path
    fold_of: dict  # sample -> fold
    paths: list
    seconds: float = 0.0
    trained_folds: int = 0

    @property
    def scores(self) -> pd.DataFrame:
        return self.evaluation.table

    def model(self, fold: str) -> CropNet:
        model = CropNet(self.setup.model_config(len(CLASSES[self.protocol])))
        state = torch.load(self.checkpoints[fold], map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        return model.eval()


def _splits(data: ProtocolData, max_folds):
    if data.protocol == "megc2019":
        return composite_loso_splits(data.table, max_folds=max_folds)
    return loso_splits(data.table["fold_key"], max_folds=max_folds)


def _fold_name(held_out: tuple) -> str:
    name = "+".join(safe_name(h) for h in held_out)
    return name if len(name) <= 60 else f"{safe_name(held_out[0])}+{len(held_out) - 1}more-{stable_hash(held_out, length=6)}"


def run_protocol(data: ProtocolData, setup: CropNetSetup, name: str = "CropNet", progress: bool = True,
                 **changes) -> RunResult:
    """Train one CropNet per LOSO fold (fresh weights each time) and predict its held-out clips.

    ``changes`` override setup fields for this run only (``preprocessing="rrs"``,
    ``cgpo=False``, ``n_key=3``, ``epochs=...``, ``max_folds=...``): the ablations use it.
    """
    setup = (setup.with_(**changes) if changes else setup).for_protocol(data.protocol)
    start_time = time.perf_counter()
    paths = prepare_images(data, setup, progress=progress)
    folds = _splits(data, setup.max_folds)
    names = [_fold_name(f.held_out) for f in folds]
    labels = data.table["label"].to_numpy()
    n_classes = len(data.classes)
    settings = setup.image_settings()
    key = {"protocol": data.protocol, "samples": list(map(str, data.table["sample"])),
           "root": str(data.dataset.root), "images": settings.key(), "model": setup.model_config(n_classes),
           "label_smoothing": setup.label_smoothing, "folds": [list(f.held_out) for f in folds],
           "augment": "paper-4", "version": 1,
           # the image files' names carry the frames' stamps: a regenerated corpus retrains
           "images_on_disk": [Path(p).name for p in paths]}
    by_name = dict(zip(names, folds))

    def make_data(fold_name):
        train = by_name[fold_name].train
        return ImageSet([paths[i] for i in train], labels[train], train=True)

    criterion = nn.CrossEntropyLoss(label_smoothing=setup.label_smoothing)
    folder = runtime.cache_dir("checkpoints", "cropnet", data.protocol)
    preds, histories, checkpoints, fold_of, trained = [], {}, {}, {}, 0
    for result in train_folds(names, lambda: CropNet(setup.model_config(n_classes)), make_data,
                              setup.train_config(), folder, key, progress=progress, desc=name,
                              criterion=criterion):
        trained += not result.skipped
        histories[result.fold], checkpoints[result.fold] = result.history, result.checkpoint
        test = by_name[result.fold].test
        logits = predict(result.model, ImageSet([paths[i] for i in test], labels[test]), batch_size=64,
                         device=setup.device)
        rows = data.table.iloc[test]
        for (_, row), guess in zip(rows.iterrows(), logits.argmax(1)):
            fold_of[row["sample"]] = result.fold
            preds.append({"sample": row["sample"], "subject": row["subject"], "dataset": row["dataset"],
                          "true": row["class"], "predicted": data.classes[int(guess)], "fold": result.fold})
    predictions = pd.DataFrame(preds)
    scored = predictions.drop(columns=["fold"])
    if data.protocol != "megc2019":
        scored = scored.drop(columns=["dataset"])
    evaluation = evaluate_recognition(scored)
    confusion = confusion_table(predictions["true"], predictions["predicted"], labels=list(data.classes))
    return RunResult(name, data.protocol, setup, predictions, evaluation, confusion, histories, checkpoints,
                     fold_of, paths, time.perf_counter() - start_time, trained)


def _round(table: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    out = table.copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].round(digits)
    return out


def scores_table(result: RunResult) -> pd.DataFrame:
    """Our pooled LOSO scores beside the paper's (Table 2 or 3: not in the seed text)."""
    t = result.scores.copy()
    t.index = ["all" if i == "all" else SOURCE_LABELS.get(i, i) for i in t.index]
    t.index.name = "subset"
    columns = ["n", "accuracy", "UF1", "UAR"] if result.protocol == "casme2_5class" else ["n", "UF1", "UAR"]
    t = _round(t[columns])
    t["paper (CropNet, ARS)"] = f"Table {'2' if result.protocol == 'casme2_5class' else '3'}: {NOT_GIVEN}"
    return t


def reference_table() -> pd.DataFrame:
    """The MEGC2019 reference numbers we do have (a compared method, not CropNet)."""
    r = REFERENCE_COMPOSITE
    return pd.DataFrame([{"method": r["method"], "UF1": r["UF1"], "UAR": r["UAR"],
                          "source": "published composite result (reference facts), not CropNet"}]).set_index("method")


def training_summary(results: list[RunResult]) -> pd.DataFrame:
    rows = []
    for r in results:
        last = [h["epoch_loss"][-1] for h in r.histories.values() if h.get("epoch_loss")]
        rows.append({"run": r.name, "protocol": r.protocol, "folds": len(r.checkpoints),
                     "epochs": r.setup.epochs, "final loss (mean over folds)": round(float(np.mean(last)), 4)})
    return pd.DataFrame(rows).set_index("run")


def timing_table(results: list[RunResult]) -> pd.DataFrame:
    return pd.DataFrame([{"run": r.name, "folds trained": r.trained_folds, "folds from checkpoints":
                          len(r.checkpoints) - r.trained_folds, "seconds": round(r.seconds, 1)}
                         for r in results]).set_index("run")


# ------------------------------------------------------------------------ ablations


def _same_run(reference: RunResult | None, wanted: CropNetSetup, protocol: str) -> bool:
    return (reference is not None and reference.protocol == protocol
            and reference.setup == wanted.for_protocol(protocol))


def ablation_table4(data: ProtocolData, setup: CropNetSetup, reference: RunResult | None = None,
                    progress: bool = True) -> tuple[pd.DataFrame, list[RunResult]]:
    """Table 4: ARS / RRS / Farneback / TV-L1 with CGPO, and ARS without CGPO.

    Every row trains with the main run's epochs and folds; ``reference`` (a run with the
    same settings) is reused for its row instead of training it again.
    """
    base = setup
    rows, runs = [], []
    variants = [(m, True) for m in METHODS] + [("ars", False)]
    for method, with_cgpo in variants:
        name = f"{METHOD_LABELS[method]}{'' if with_cgpo else ' w/o CGPO'}"
        wanted = base.with_(preprocessing=method, cgpo=with_cgpo)
        if _same_run(reference, wanted, data.protocol):
            run = reference
        else:
            run = run_protocol(data, wanted, name=name, progress=progress)
        runs.append(run)
        s = run.scores.loc["all"]
        rows.append({"preprocessing": METHOD_LABELS[method], "CGPO": "yes" if with_cgpo else "no",
                     "accuracy": s["accuracy"], "UF1": s["UF1"], "UAR": s["UAR"],
                     "paper (Table 4)": NOT_GIVEN})
    return _round(pd.DataFrame(rows).set_index(["preprocessing", "CGPO"])), runs


def nkey_sweep(data: ProtocolData, setup: CropNetSetup, values=None, reference: RunResult | None = None,
               progress: bool = True) -> tuple[pd.DataFrame, list[RunResult]]:
    """Figure 5: UF1 and UAR against N_key (ARS, CGPO), with the main run's budget."""
    values = tuple(values or setup.limits.nkey_sweep)
    base = setup.with_(preprocessing="ars", cgpo=True)
    rows, runs = [], []
    for n in values:
        wanted = base.with_(n_key=int(n))
        if _same_run(reference, wanted, data.protocol):
            run = reference
        else:
            run = run_protocol(data, wanted, name=f"N_key={n}", progress=progress)
        runs.append(run)
        s = run.scores.loc["all"]
        rows.append({"N_key": int(n), "UF1": s["UF1"], "UAR": s["UAR"], "paper (figure 5)": NOT_GIVEN})
    return _round(pd.DataFrame(rows).set_index("N_key")), runs


def nkey_figure(sweep: pd.DataFrame, protocol: str):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    for metric, marker in (("UF1", "o"), ("UAR", "s")):
        ax.plot(sweep.index, sweep[metric], marker=marker, label=metric)
    ax.axvline(5, color="0.6", ls="--", lw=1, label="paper's choice (5)")
    ax.set_xlabel("N_key (key frames)")
    ax.set_ylabel("score")
    ax.set_ylim(0, 1)
    ax.set_title(f"N_key sweep, {PROTOCOL_LABELS[protocol]}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------ figures


def example_rows(data: ProtocolData) -> dict:
    """One clip per class (the first in table order that has the class)."""
    out = {}
    for c in data.classes:
        hits = np.flatnonzero(data.table["class"].to_numpy() == c)
        if len(hits):
            out[c] = int(hits[0])
    return out


def preprocessing_figure(data: ProtocolData, setup: CropNetSetup, paths_by_method: dict):
    """Rows: one clip per class. Columns: start frame, last key frame, ARS, RRS and the flows."""
    import matplotlib.pyplot as plt

    rows = example_rows(data)
    methods = [m for m in METHODS if m in paths_by_method]
    ncols = 2 + len(methods)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(1.9 * ncols, 1.95 * len(rows)), squeeze=False)
    for r, (cls, index) in enumerate(rows.items()):
        frames = clip_frames(data, setup, index)
        panels = list(frames.items()) + [(METHOD_LABELS[m], load_image(paths_by_method[m][index])) for m in methods]
        for c, (title, image) in enumerate(panels):
            axes[r, c].imshow(image)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            axes[r, c].set_title(title if r == 0 or c < 2 else "", fontsize=7)
        axes[r, 0].set_ylabel(f"{cls}\n{data.table.iloc[index]['sample']}", fontsize=7)
    fig.suptitle(f"Preprocessing, one clip per class ({PROTOCOL_LABELS[data.protocol]})", fontsize=10)
    fig.tight_layout()
    return fig


def cgpo_figure(image: np.ndarray, setup: CropNetSetup):
    """The CGPO input with its crop boxes, then the 10 crops in z-order."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    layout = CGPOLayout(setup.input_size, setup.crop_size, setup.alpha)
    crops = cgpo_crops(image, layout)
    boxes = layout.boxes()
    fig = plt.figure(figsize=(11, 3.6))
    grid = fig.add_gridspec(2, 2 + (len(crops) + 1) // 2)
    ax = fig.add_subplot(grid[:, :2])
    ax.imshow(image)
    colours = plt.cm.tab10(np.arange(len(boxes)) % 10)
    for i, (level, top, left) in enumerate(boxes):
        scale = 2 ** level
        ax.add_patch(Rectangle((left * scale - 0.5, top * scale - 0.5), setup.crop_size * scale,
                               setup.crop_size * scale, fill=False, lw=1.2 + level, ec=colours[i]))
    ax.set_title(f"{setup.input_size} px input, {len(boxes)} boxes (α = {setup.alpha:g})", fontsize=9)
    ax.axis("off")
    for i, crop in enumerate(crops):
        a = fig.add_subplot(grid[i // ((len(crops) + 1) // 2), 2 + i % ((len(crops) + 1) // 2)])
        a.imshow(crop)
        level, top, left = boxes[i]
        a.set_title(f"z{i}: {layout.levels[level]} px @({top},{left})", fontsize=7, color=colours[i])
        a.axis("off")
    fig.tight_layout()
    return fig


def confusion_figure(results: list[RunResult]):
    """Row-normalised pooled confusion matrices (figure 4), counts in the cells."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.8), squeeze=False)
    for ax, r in zip(axes[0], results):
        counts = r.confusion.to_numpy()
        share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(counts.shape[0]):
            for j in range(counts.shape[1]):
                ax.text(j, i, f"{counts[i, j]}", ha="center", va="center", fontsize=8,
                        color="white" if share[i, j] > 0.6 else "black")
        labels = list(r.confusion.columns)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{r.name}: {PROTOCOL_LABELS[r.protocol]}", fontsize=9)
    fig.tight_layout()
    return fig


def loss_figure(results: list[RunResult]):
    import matplotlib.pyplot as plt

    from melib.visualization.training import plot_loss_curves

    fig, axes = plt.subplots(1, len(results), figsize=(4.6 * len(results), 3.2), squeeze=False)
    for ax, r in zip(axes[0], results):
        plot_loss_curves(r.histories, ax=ax, title=f"{r.name} ({PROTOCOL_LABELS[r.protocol]})")
    fig.tight_layout()
    return fig


def cam_layer(model: CropNet) -> nn.Module:
    """The deepest extractor block whose maps on one crop are still at least 4x4."""
    side = model.config.crop_size if model.config.cgpo else model.config.input_size
    x = torch.zeros(1, 3, side, side)
    chosen = model.extractor.stem
    with torch.no_grad():
        x = model.extractor.stem(x)
        for block in model.extractor.features:
            x = block(x)
            if min(x.shape[-2:]) >= 4:
                chosen = block
    return chosen


def gradcam_figure(result: RunResult, data: ProtocolData, max_rows: int = 3):
    """Grad-CAM of each CGPO crop for held-out clips (one per true class, correct ones
    first), each explained by the model of its own fold for the predicted class."""
    import matplotlib.pyplot as plt
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from melib.visualization.cams import grad_cam

    preds = result.predictions.reset_index(drop=True)
    picks = []
    for cls in data.classes:
        rows = preds[preds["true"] == cls]
        if len(rows):
            right = rows[rows["true"] == rows["predicted"]]
            picks.append((right if len(right) else rows).index[0])
    picks = picks[:max_rows]
    index_of = {s: i for i, s in enumerate(data.table["sample"])}
    n_crops = CropNet(result.setup.model_config(len(data.classes))).n_crops
    fig, axes = plt.subplots(len(picks), n_crops, figsize=(1.35 * n_crops, 1.6 * len(picks)), squeeze=False)
    for r, p in enumerate(picks):
        row = preds.loc[p]
        model = result.model(row["fold"])
        x = ImageSet([result.paths[index_of[row["sample"]]]], [0]).image(0)[None]
        crops = model.crops(x)[0]
        target = [ClassifierOutputTarget(data.classes.index(row["predicted"]))]
        cams = grad_cam(CropView(model), crops, cam_layer(model), targets=target)
        for c in range(n_crops):
            ax = axes[r, c]
            ax.imshow(denormalise(crops[c]))
            ax.imshow(cams[c], cmap="jet", alpha=0.45, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"z{c}", fontsize=8)
        axes[r, 0].set_ylabel(f"{row['true']}→{row['predicted']}", fontsize=7)
    fig.suptitle(f"Grad-CAM on the CGPO crops ({result.name}, {PROTOCOL_LABELS[result.protocol]}; "
                 "each clip's own fold model)", fontsize=9)
    fig.tight_layout()
    return fig


def tsne_data(setup: CropNetSetup, progress: bool = True) -> tuple[ProtocolData, pd.Series, str]:
    """Figure 6's data: CASME II's clips in three classes (negative / positive /
    surprise). When the corpus has fewer than 10 such clips (the smoke corpus), the
    composite is used instead, and the title says so."""
    casme = load_protocol(setup, "casme2_5class")
    mapped = casme.table["emotion"].str.lower().map(MEGC2019_EMOTION_MAP["casme2"])
    keep = mapped.notna().to_numpy()
    if keep.sum() >= 10:
        sub = ProtocolData("casme2_5class", casme.dataset, casme.table[keep].reset_index(drop=True), casme.classes)
        return sub, mapped[keep].reset_index(drop=True), "CASME II, 3 classes"
    comp = load_protocol(setup, "megc2019")
    return comp, comp.table["class"], "MEGC2019 composite (too few CASME II clips here)"


def tsne_figure(setup: CropNetSetup, progress: bool = True):
    """Figure 6: t-SNE of the preprocessed images (pixels, down-sampled), per method."""
    import cv2
    import matplotlib.pyplot as plt

    from melib.visualization.embedding import plot_embedding, tsne

    data, labels, what = tsne_data(setup, progress)
    fig, axes = plt.subplots(1, len(METHODS), figsize=(3.6 * len(METHODS), 3.6), squeeze=False)
    palette = {"negative": "tab:red", "positive": "tab:green", "surprise": "tab:blue"}
    side = setup.limits.tsne_size
    for ax, method in zip(axes[0], METHODS):
        paths = prepare_images(data, setup, method, progress=progress)
        x = np.stack([cv2.resize(load_image(p), (side, side), interpolation=cv2.INTER_AREA).ravel()
                      for p in paths]).astype(np.float32) / 255
        xy = tsne(x, seed=setup.seed)
        plot_embedding(xy, labels.to_numpy(), ax=ax, palette=palette,
                       order=[c for c in palette if c in set(labels)], size=18,
                       title=f"{METHOD_LABELS[method]} ({len(x)} clips)")
    fig.suptitle(f"t-SNE of the preprocessed images, {what}", fontsize=10)
    fig.tight_layout()
    return fig


def parameter_table(setup: CropNetSetup) -> pd.DataFrame:
    """Parameter counts of each backbone option (10-crop CropNet, 5 classes)."""
    from melib.models.cropnet import BACKBONES

    rows = []
    for name in BACKBONES:
        model = CropNet(CropNetConfig(num_classes=5, backbone=name))
        rows.append({"backbone": name, "parameters (M)": round(count_parameters(model) / 1e6, 3),
                     "extractor only (M)": round(count_parameters(model.extractor) / 1e6, 3)})
    out = pd.DataFrame(rows).set_index("backbone")
    out["paper"] = ""
    out.loc[out.index[0], "paper"] = f"about {PAPER_PARAMETERS_M} M (whole network)"
    return out


def paper_numbers() -> pd.DataFrame:
    """What the seed text gives in numbers, and what it leaves out."""
    given = pd.DataFrame({"in the seed text": list(PAPER_GIVEN.values())}, index=list(PAPER_GIVEN))
    given.index.name = "setting"
    silent = pd.DataFrame({"our choice": list(PAPER_SILENT.values())}, index=list(PAPER_SILENT))
    silent.index.name = "not in the seed text"
    return given, silent


__all__ = [
    "PROTOCOLS", "CLASSES", "PROFILES", "CropNetSetup", "configure", "ProtocolData", "load_protocol",
    "prepare_images", "ImageSet", "augmentation", "RunResult", "run_protocol", "scores_table",
    "reference_table", "training_summary", "timing_table", "ablation_table4", "nkey_sweep", "nkey_figure",
    "preprocessing_figure", "cgpo_figure", "confusion_figure", "loss_figure", "gradcam_figure",
    "tsne_figure", "parameter_table", "paper_numbers",
]
