"""Bai end to end: Mengjiong Bai, "Detection of micro-expression recognition based on
spatio-temporal modelling and spatial attention" (ICMI 2020 Doctoral Consortium; seed
001). A doctoral proposal: it *reports* two experiments and *plans* several more.

Reported (section 3):

* 3.1 frame level: a ResNet-50 (VGGFace2-trained in the paper) retrained on single
  frames with transfer learning, from a "specific layer" l_s chosen with Grad-CAM;
  experiments I (classifier only), II (layers before l_s frozen) and III (layers after
  l_s removed), each with fc1-fc3. SMIC: 32.6 %.
* 3.2 sequence level: that CNN encodes each of N frames (N = 11..17) sampled without
  face cropping or alignment, and a uni- or bidirectional LSTM classifies the sequence.
  SMIC: 60.06 %.

Planned (section 4): GRU and TCN decoders, spatial attention, Eulerian video
magnification (EVM); CASME II and SAMM.

Each notebook cell calls one or two functions of this module:

1. :func:`configure` resolves the parameters against a :class:`Profile`;
   :func:`caveats` lists where the run departs from the paper;
2. :func:`prepare` loads the clips (:class:`Clips`) and caches their preprocessed frames
   (optionally magnified) per clip;
3. :func:`choose_specific_layer` runs Grad-CAM on every ResNet-50 stage and picks l_s
   with a documented criterion (:data:`LAYER_CRITERION`);
4. :func:`run_frame_level` trains one frame classifier per LOSO fold (experiment I, II
   or III); :func:`run_sequence_level` encodes the sampled frames with each fold's CNN
   once (cached) and trains the decoders on the cached features;
5. tables beside the paper's numbers (labelled as the paper's) and figures.

To fit a CPU, the decoders train on per-frame features cached per fold (the fold's
frame CNN is frozen while the decoder learns). ``training="end_to_end"`` instead
fine-tunes CNN and decoder together on frame sequences (:class:`SequenceClassifier`),
as a GPU run of the ``full`` profile can afford.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset as TorchDataset

from melib import runtime
from melib.data.datasets import MEGC2019_EMOTION_MAP, RECOGNITION, load_from_data_root
from melib.evaluation.protocols import loso_splits
from melib.evaluation.recognition import evaluate_recognition
from melib.features.cache import safe_name, stable_hash
from melib.models.bai import DECODERS, EXPERIMENTS, STAGES, FrameClassifier, SequenceClassifier, SequenceDecoder
from melib.training import TrainConfig, predict, progress_bar, train_folds

DATASET_LABELS = {"smic_hs": "SMIC-HS", "casme2": "CASME II", "samm": "SAMM"}
CLASS_SETS = ("megc2019", "all")
ALIGNMENTS = ("none", "crop", "align")
TRAINING_MODES = ("cached", "end_to_end")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
# The landmark regions of melib.face.regions that the l_s criterion counts as
# "facial features" (the proposal: eyes, eyebrows, nose wings, mouth corners).
STAGE_STRIDES = {"conv1": 4, "layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32}  # ResNet-50 down-sampling
FEATURE_REGIONS = ("eyes_brows", "nose", "mouth")
LAYER_CRITERION = (
    "l_s = the ResNet-50 stage whose Grad-CAM puts the largest share of its mass inside the landmark "
    "regions eyes+brows, nose and mouth (melib.face.regions, union of boxes), averaged over the apex "
    "frames of the first clips of each class; Grad-CAM explains the network's own top class (no labels); "
    "ties go to the shallower stage")

# ------------------------------------------------------------------ the paper's numbers

# Everything the proposal gives in numbers (SMIC only; "accuracy" is the only metric).
PAPER_RESULTS = {
    "frames": {"what": "VGGFace2 ResNet-50 retrained on frames (section 3.1, experiments of figure 2)",
               "accuracy": 0.326},
    "sequence": {"what": "VGGFace2 + LSTM over N = 11..17 frames (section 3.2; uni- or bidirectional not "
                         "stated)", "accuracy": 0.6006},
}
STATUS = {"lstm": "reported (3.2)", "bilstm": "reported (3.2)", "gru": "planned (4)", "tcn": "planned (4.1)",
          "attention": "planned (4.2)", "magnify": "planned (4.3)"}
PAPER_SILENT = {
    "which experiment (I/II/III) gave 32.6 %": "not stated; experiment II is the default here",
    "which N and which LSTM direction gave 60.06 %": "not stated; N = 11 and the uni-directional LSTM here",
    "l_s criterion": "'closest to the facial features': made quantitative as LAYER_CRITERION",
    "fc1-fc3 widths, dropout": "fc1 512, fc2 256, fc3 = classes; dropout 0.5 (melib.models.bai)",
    "optimiser, learning rate, epochs, batch": "Adam; lr 1e-3 from scratch, 1e-4 with weights; profile epochs",
    "frames used at frame level": "the profile's number of frames of each clip's N-frame sequence",
    "input size and normalisation": "square frames resized to input_size; ImageNet mean/std",
    "what the decoder reads": "fc2's 256-d frame vector (with attention: the last stage's maps), standardised "
                              "with the training subjects' mean and deviation",
    "LSTM hidden size": "128 per direction",
    "EVM parameters": "linear EVM, alpha 10, 2-12 Hz ideal band, 4 levels (melib.features.magnification)",
    "CASME II / SAMM classes": "MEGC2019's negative / positive / surprise (classes='all': every emotion)",
    "VGGFace2 weights": "not downloadable here: from scratch unless weights_path names a local file",
}

# ------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Profile:
    corpus: str
    input_size: int
    frames_per_clip: int | None  # frames of each sequence used at frame level (None: all N)
    epochs: int  # frame-level CNN
    decoder_epochs: int
    batch_size: int
    max_folds: int | None
    n_sweep: tuple
    decoders: tuple
    experiments: tuple  # frame-level experiments in the table (the main one always runs)
    cam_clips: int  # clips whose apex frames feed the l_s criterion
    decoder_batch: int = 8
    training: str = "cached"


PROFILES = {
    # CI: the tiny corpus (6 clips, 2 subjects), 48 px, 1 epoch.
    "smoke": Profile(corpus="tiny", input_size=48, frames_per_clip=2, epochs=1, decoder_epochs=3, batch_size=8,
                     max_folds=2, n_sweep=(11, 13), decoders=DECODERS, experiments=EXPERIMENTS, cam_clips=3),
    # The book: the book corpus (36 SMIC clips, 6 subjects), 3 grouped folds, 64 px (a 2-core CPU in 15 min).
    "book": Profile(corpus="book", input_size=64, frames_per_clip=4, epochs=3, decoder_epochs=40, batch_size=16,
                    max_folds=3, n_sweep=(11, 14, 17), decoders=DECODERS, experiments=EXPERIMENTS, cam_clips=6),
    # Paper scale (a GPU): 224 px, every LOSO fold, all N, every frame of the sequence.
    "full": Profile(corpus="full", input_size=224, frames_per_clip=None, epochs=20, decoder_epochs=60,
                    batch_size=32, max_folds=None, n_sweep=(11, 12, 13, 14, 15, 16, 17), decoders=DECODERS,
                    experiments=EXPERIMENTS, cam_clips=12, decoder_batch=16),
}


@dataclass(frozen=True)
class BaiSetup:
    """The resolved run: the notebook's parameters after the profile's defaults."""

    seed: int
    profile: str
    data_root: Path | None
    device: str
    dataset: str
    classes: str
    weights_path: str | None
    experiment: str
    specific_layer: str  # "auto" or a stage name
    fc: tuple
    decoder: str
    attention: bool
    n_frames: int
    alignment: str
    magnify: bool
    alpha: float
    low_hz: float
    high_hz: float
    input_size: int
    epochs: int
    decoder_epochs: int
    lr: float
    decoder_lr: float
    hidden: int
    batch_size: int
    max_folds: int | None
    frames_per_clip: int | None
    training: str
    limits: Profile = field(repr=False)

    def with_(self, **changes) -> "BaiSetup":
        return dataclasses.replace(self, **changes)

    def frame_key(self) -> dict:
        """What changes the cached frames."""
        key = {"alignment": self.alignment, "size": self.input_size, "magnify": self.magnify}
        if self.magnify:
            key.update(alpha=self.alpha, low_hz=self.low_hz, high_hz=self.high_hz)
        return key

    def frame_train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, optimizer="adam",
                           loss="ce", seed=self.seed, device=self.device)

    def decoder_train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.decoder_epochs, batch_size=self.limits.decoder_batch, lr=self.decoder_lr,
                           optimizer="adam", loss="ce", seed=self.seed, device=self.device)

    def describe(self) -> pd.DataFrame:
        """What runs, beside what the proposal says (or that it says nothing)."""
        silent = "not given"
        rows = [
            ("data", str(self.data_root / self.dataset) if self.data_root else
             f"synthetic corpus '{self.limits.corpus}', {DATASET_LABELS[self.dataset]} layout (not the real data)",
             "SMIC (CASME II, SAMM planned)"),
            ("classes", "negative / positive / surprise" if self.dataset == "smic_hs" or self.classes == "megc2019"
             else "every emotion label", "SMIC's 3 classes"),
            ("LOSO folds", "every subject" if self.max_folds is None else f"{self.max_folds} folds of grouped subjects",
             silent),
            ("backbone", f"ResNet-50, {'weights from ' + str(self.weights_path) if self.weights_path else 'from scratch'}",
             "ResNet-50 trained on VGGFace2"),
            ("specific layer l_s", "chosen by Grad-CAM (criterion below)" if self.specific_layer == "auto"
             else f"{self.specific_layer} (given)", "chosen by Grad-CAM"),
            ("frame-level experiment", f"{self.experiment} (table: {', '.join(self.limits.experiments)})", "I, II, III"),
            ("fc1, fc2, fc3", f"{self.fc[0]}, {self.fc[1]}, classes", "fc1-fc3, sizes not given"),
            ("input", f"{self.input_size} px, {ALIGNMENT_LABELS[self.alignment]}",
             "frames without face cropping or alignment (3.2)"),
            ("frames per clip (frame level)", "all N" if self.frames_per_clip is None else str(self.frames_per_clip),
             silent),
            ("sequence length N", f"{self.n_frames} (sweep {', '.join(map(str, self.limits.n_sweep))})", "11 .. 17"),
            ("decoder", f"{self.decoder}{' + spatial attention' if self.attention else ''} "
             f"(table: {', '.join(self.limits.decoders)} + attention)", "LSTM, BiLSTM (GRU, TCN, attention planned)"),
            ("decoder training", "on cached per-fold frame features" if self.training == "cached"
             else "end to end with the CNN", silent),
            ("EVM", f"on: alpha {self.alpha:g}, {self.low_hz:g}-{self.high_hz:g} Hz" if self.magnify else
             "off (ablation below)", "planned, parameters not given"),
            ("optimiser", f"Adam, lr {self.lr:g} (CNN) / {self.decoder_lr:g} (decoder)", silent),
            ("epochs / batch", f"{self.epochs} (CNN), {self.decoder_epochs} (decoder) / {self.batch_size}", silent),
            ("device", str(runtime.resolve_device(self.device)), silent),
        ]
        return pd.DataFrame(rows, columns=["setting", "this run", "paper"]).set_index("setting")


ALIGNMENT_LABELS = {"none": "the whole frame resized (no crop, no alignment: the paper's)",
                    "crop": "dlib face box per clip", "align": "eyes levelled, then the dlib face box"}


def configure(seed: int = 0, profile: str = "book", data_root=None, device: str = "auto",
              dataset: str = "smic_hs", classes: str = "megc2019", weights_path: str | None = None,
              experiment: str = "II", specific_layer: str = "auto", fc=(512, 256), decoder: str = "lstm",
              attention: bool = False, n_frames: int = 11, alignment: str = "none", magnify: bool = False,
              alpha: float = 10.0, band=(2.0, 12.0), input_size: int | None = None, epochs: int | None = None,
              decoder_epochs: int | None = None, lr: float | None = None, decoder_lr: float = 1e-3,
              hidden: int = 128, batch_size: int | None = None, max_folds: int | str | None = "profile",
              training: str | None = None) -> BaiSetup:
    """Resolve the notebook parameters; ``None`` (or ``"profile"``) means the profile's value."""
    runtime.check_profile(profile)
    runtime.seed_everything(seed)
    checks = {"dataset": (dataset, RECOGNITION), "classes": (classes, CLASS_SETS),
              "experiment": (experiment, EXPERIMENTS), "decoder": (decoder, DECODERS),
              "alignment": (alignment, ALIGNMENTS), "specific_layer": (specific_layer, ("auto",) + STAGES)}
    for name, (value, allowed) in checks.items():
        if value not in allowed:
            raise ValueError(f"{name}={value!r}: use one of {', '.join(map(str, allowed))}")
    prof = PROFILES[profile]
    training = training or prof.training
    if training not in TRAINING_MODES:
        raise ValueError(f"training={training!r}: use one of {', '.join(TRAINING_MODES)}")
    if not 2 <= int(n_frames) <= 64:
        raise ValueError(f"n_frames={n_frames}: use a sequence length between 2 and 64 (the paper: 11..17)")
    low_hz, high_hz = (float(b) for b in band)
    if not 0 <= low_hz < high_hz:
        raise ValueError(f"band={band!r}: give (low_hz, high_hz) with 0 <= low_hz < high_hz")
    size = int(input_size or prof.input_size)
    if size < 32:
        raise ValueError(f"input_size={size}: ResNet-50 needs at least 32 px (it down-samples 32x)")
    if weights_path is not None and not Path(weights_path).expanduser().is_file():
        raise FileNotFoundError(f"weights_path={weights_path!r}: no such file. Give a local ResNet-50 state dict "
                                "(e.g. VGGFace2) or None to train from scratch")
    positive = {"alpha": alpha, "epochs": epochs, "decoder_epochs": decoder_epochs, "lr": lr,
                "decoder_lr": decoder_lr, "hidden": hidden, "batch_size": batch_size}
    for name, value in positive.items():
        if value is not None and not float(value) > 0:
            raise ValueError(f"{name}={value!r}: must be above 0 (None means the profile's value)")
    fc = tuple(int(w) for w in fc)
    if len(fc) != 2:
        raise ValueError(f"fc={fc!r}: give the widths of fc1 and fc2 (fc3 outputs the classes)")
    return BaiSetup(
        seed=int(seed), profile=profile, data_root=Path(data_root).expanduser() if data_root else None,
        device=device, dataset=dataset, classes=classes, weights_path=str(weights_path) if weights_path else None,
        experiment=experiment, specific_layer=specific_layer, fc=fc, decoder=decoder, attention=bool(attention),
        n_frames=int(n_frames), alignment=alignment, magnify=bool(magnify), alpha=float(alpha), low_hz=low_hz,
        high_hz=high_hz, input_size=size, epochs=int(epochs or prof.epochs),
        decoder_epochs=int(decoder_epochs or prof.decoder_epochs),
        lr=float(lr if lr is not None else (1e-4 if weights_path else 1e-3)), decoder_lr=float(decoder_lr),
        hidden=int(hidden), batch_size=int(batch_size or prof.batch_size),
        max_folds=prof.max_folds if max_folds == "profile" else max_folds,
        frames_per_clip=prof.frames_per_clip, training=training, limits=prof)


def caveats(setup: BaiSetup) -> str:
    """Plain-language list of where this run departs from the proposal."""
    lines = []
    if setup.data_root is None:
        lines.append(f"- data: melib's synthetic corpus '{setup.limits.corpus}' in the {DATASET_LABELS[setup.dataset]} "
                     "layout; these are not results on the real dataset")
    elif setup.dataset != "smic_hs":
        lines.append(f"- data: {DATASET_LABELS[setup.dataset]} (the proposal reports SMIC only)")
    if setup.weights_path is None:
        lines.append("- backbone: ResNet-50 trained from scratch (no VGGFace2 weights given): the Grad-CAM choice of "
                     "l_s reads an untrained network, and experiment I trains a classifier on random features")
    if setup.specific_layer == "auto":
        lines.append("- l_s: chosen among the 5 ResNet-50 stages (conv1, layer1..layer4), not among every "
                     "convolutional layer as the proposal says, by a stated criterion instead of by eye, once "
                     "for all folds")
    lines.append("- frame level: every frame of a clip carries the clip's label (the proposal does not say)")
    if setup.max_folds is not None:
        lines.append(f"- LOSO: {setup.max_folds} folds of grouped subjects instead of one per subject")
    if setup.input_size != 224:
        lines.append(f"- input: {setup.input_size} px instead of ResNet-50's 224 px")
    if setup.frames_per_clip is not None:
        lines.append(f"- frame level: {setup.frames_per_clip} frames per clip, {setup.epochs} epoch(s)")
    if setup.training == "cached":
        lines.append("- sequence level: decoders train on frame features cached from each fold's frame CNN "
                     "(the CNN is not fine-tuned with the decoder)")
    if tuple(setup.limits.n_sweep) != tuple(range(11, 18)):
        lines.append(f"- N sweep: {', '.join(map(str, setup.limits.n_sweep))} instead of every N in 11..17")
    if setup.alignment != "none":
        lines.append(f"- faces: {ALIGNMENT_LABELS[setup.alignment]} (the paper uses whole frames)")
    if not lines:
        return "This run uses the proposal's settings (where it gives them)."
    return "Departures from the paper in this run:\n" + "\n".join(lines)


def paper_table() -> pd.DataFrame:
    """The proposal's only numbers (SMIC accuracy), labelled as the paper's."""
    rows = [{"level": level, "what (paper)": r["what"], "paper accuracy (SMIC)": r["accuracy"]}
            for level, r in PAPER_RESULTS.items()]
    return pd.DataFrame(rows).set_index("level")


def paper_silent() -> pd.DataFrame:
    out = pd.DataFrame({"our choice": list(PAPER_SILENT.values())}, index=list(PAPER_SILENT))
    out.index.name = "not in the proposal"
    return out


# ------------------------------------------------------------------------ the data


@dataclass
class Clips:
    """The labelled clips of one dataset and where their preprocessed frames are cached."""

    dataset: object  # melib.data.datasets.Dataset
    table: pd.DataFrame  # standard columns + sample, class, label, length
    classes: tuple
    fps: float
    frames: list = field(default_factory=list)  # per clip: .npy of (length, S, S, 3) uint8
    magnified: bool = False

    @property
    def name(self) -> str:
        """The dataset key (cache folders are per dataset)."""
        return self.dataset.name if self.dataset is not None else "clips"

    def class_counts(self) -> pd.DataFrame:
        counts = self.table.groupby(["subject", "class"]).size().unstack(fill_value=0)
        counts = counts.reindex(columns=[c for c in self.classes if c in counts.columns], fill_value=0)
        counts.loc["total"] = counts.sum()
        return counts

    def load(self, i: int) -> np.ndarray:
        """Clip ``i``'s frames, onset to offset, memory-mapped (length, S, S, 3) uint8."""
        return np.load(self.frames[i], mmap_mode="r")


def data_root_for(setup: BaiSetup) -> Path:
    if setup.data_root is not None:
        return setup.data_root
    from melib.data.synth import ensure_corpus

    # The corpus seed is fixed: the notebook's seed varies training, not the data.
    return ensure_corpus(setup.limits.corpus, 0, progress=False)


def label_table(annotations: pd.DataFrame, dataset: str, classes: str) -> tuple[pd.DataFrame, tuple]:
    """Keep the clips of the chosen classes and number them: SMIC's three classes, or
    CASME II / SAMM mapped to MEGC2019's negative / positive / surprise (``megc2019``),
    or every emotion label as it is (``all``)."""
    table = annotations.copy()
    emotion = table["emotion"].astype(str).str.lower()
    if classes == "megc2019" or dataset == "smic_hs":
        table["class"] = emotion.map(MEGC2019_EMOTION_MAP[dataset])
        names = tuple(c for c in ("negative", "positive", "surprise") if c in set(table["class"].dropna()))
    else:
        table["class"] = emotion
        names = tuple(sorted(set(emotion)))
    table = table[table["class"].notna()].reset_index(drop=True)
    table["label"] = table["class"].map({c: i for i, c in enumerate(names)}).astype(int)
    table["length"] = (table["offset"] - table["onset"] + 1).astype(int)
    return table, names


def sequence_indices(length: int, n: int) -> np.ndarray:
    """N frame positions from the first (onset) to the last (offset) frame of a clip,
    evenly spaced and rounded; a clip shorter than N repeats frames."""
    if length < 1 or n < 1:
        raise ValueError(f"a clip of {length} frames cannot give {n} frames")
    return np.round(np.linspace(0, length - 1, n)).astype(int)


def frame_level_indices(length: int, n: int, per_clip: int | None) -> np.ndarray:
    """The frames of a clip used at frame level: ``per_clip`` of its N-frame sequence,
    evenly spaced and away from the two ends (onset and offset look neutral), or the
    whole sequence when ``per_clip`` is None."""
    seq = sequence_indices(length, n)
    if per_clip is None or per_clip >= n:
        return seq
    inner = np.round(np.linspace(0, n - 1, per_clip + 2)[1:-1]).astype(int)
    return seq[inner]


def prepare(setup: BaiSetup, magnified: bool | None = None, progress: bool = True) -> Clips:
    """Load the dataset's labelled clips and cache each clip's preprocessed frames."""
    root = data_root_for(setup)
    ds = load_from_data_root(setup.dataset, root)
    table, names = label_table(ds.annotations, setup.dataset, setup.classes)
    if setup.data_root is None and len(names) < 2 and setup.classes != "all":
        # The tiny synthetic corpus has a handful of clips per dataset; when MEGC2019's
        # mapping leaves one class, the lesson still runs on the raw emotion labels.
        print(f"note: the synthetic {setup.dataset} clips fall into {len(names)} MEGC2019 class(es) "
              "here; using every emotion label instead (classes='all')")
        table, names = label_table(ds.annotations, setup.dataset, "all")
    if table.empty or len(names) < 2:
        raise ValueError(f"{setup.dataset} under {root}: {len(table)} clips in {len(names)} classes after mapping the "
                         f"emotions ({setup.classes!r}); need at least 2 classes. Fix: use classes='all' or "
                         "another dataset")
    if table["subject"].nunique() < 2:
        raise ValueError(f"{setup.dataset} under {root}: LOSO needs clips from 2 subjects, found "
                         f"{table['subject'].nunique()}")
    magnified = setup.magnify if magnified is None else magnified
    clips = Clips(ds, table, names, float(ds.fps), magnified=magnified)
    settings = setup.with_(magnify=magnified)
    clips.frames = cache_frames(clips, settings, progress=progress)
    return clips


def _frame_stamp(dataset, video: str) -> list:
    paths = dataset.frame_paths(video)
    st = paths[-1].stat()
    return [str(paths[0]), len(paths), st.st_size, st.st_mtime_ns]


def cache_frames(clips: Clips, setup: BaiSetup, progress: bool = True) -> list[Path]:
    """One ``.npy`` per clip: its frames onset..offset, preprocessed (and magnified when
    ``setup.magnify``). Written atomically; a rerun reads them back."""
    folder = runtime.cache_dir("features", "bai", clips.name)
    paths = []
    rows = list(clips.table.itertuples())
    for row in progress_bar(rows, desc=f"frames{' + EVM' if setup.magnify else ''}", disable=not progress):
        key = stable_hash(setup.frame_key(), int(row.onset), int(row.offset), _frame_stamp(clips.dataset, row.video),
                          "v1")
        path = folder / f"{safe_name(row.sample)}-{key}.npy"
        if not path.is_file():
            frames = read_clip(clips.dataset, row.video, int(row.onset), int(row.offset), setup.alignment,
                               setup.input_size)
            if setup.magnify:
                from melib.features.magnification import magnify

                frames = magnify(frames, clips.fps, alpha=setup.alpha, low_hz=setup.low_hz, high_hz=setup.high_hz)
            runtime.save_npy(path, frames)
        paths.append(path)
    return paths


def read_clip(dataset, video: str, onset: int, offset: int, alignment: str, size: int) -> np.ndarray:
    """Frames onset..offset of a video as (T, size, size, 3) uint8.

    ``none``: the whole frame resized (the proposal drops cropping and alignment);
    ``crop``: the video's dlib reference box; ``align``: the frame rotated so that the
    reference frame's eyes are level, then that box.
    """
    import cv2

    from melib import face

    track = None if alignment == "none" else face.track_video(dataset, video)
    out = np.empty((offset - onset + 1, size, size, 3), np.uint8)
    for t, image in enumerate(dataset.iter_frames(video, onset, offset + 1)):
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        if alignment == "none":
            out[t] = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
            continue
        if alignment == "align":
            image, _ = face.align(image, track.landmarks)
        out[t] = face.crop(image, track.box, size)
    return out


def landmarks_in_input(clips: Clips, i: int, alignment: str, size: int) -> np.ndarray:
    """Clip ``i``'s reference landmarks (68, 2) in the coordinates of its cached frames."""
    from melib import face

    row = clips.table.iloc[i]
    track = face.track_video(clips.dataset, row["video"])
    marks = track.landmarks
    if alignment == "none":
        h, w = track.frame_shape[:2]
        return (marks * np.array([size / w, size / h], np.float32)).astype(np.float32)
    if alignment == "align":
        marks = face.transform_points(marks, face.alignment_matrix(marks))
    return face.points_to_crop(marks, track.box, size)


def feature_mask(marks: np.ndarray, size: int) -> np.ndarray:
    """Boolean (size, size) mask: the union of the eyes+brows, nose and mouth boxes.

    The margin scales with the input (12 px on a 128 px face crop in SOFTNet)."""
    from melib import face

    margin = max(1, int(round(size * 0.03)))
    boxes = face.regions(marks, margin=margin)
    mask = np.zeros((size, size), bool)
    for name in FEATURE_REGIONS:
        mask[boxes[name].clip((size, size)).slices()] = True
    return mask


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float, ImageNet-normalised."""
    x = (np.asarray(frames, np.float32) / 255 - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, -3)))


class FrameSet(TorchDataset):
    """(frame, label) pairs: ``items`` is a list of (clip, frame position); horizontal
    flips (p 0.5) when ``train``."""

    def __init__(self, clips: Clips, items: list, train: bool = False, seed: int = 0):
        self.clips, self.items, self.train = clips, list(items), train
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int):
        i, t = self.items[k]
        frame = np.array(self.clips.load(i)[t])
        if self.train and self.rng.random() < 0.5:
            frame = frame[:, ::-1]
        return to_tensor(frame), torch.tensor(int(self.clips.table["label"].iat[i]))


class SequenceSet(TorchDataset):
    """(N frames, label) pairs for end-to-end training."""

    def __init__(self, clips: Clips, indices, n_frames: int):
        self.clips, self.indices, self.n = clips, list(indices), n_frames

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int):
        i = self.indices[k]
        frames = self.clips.load(i)
        seq = np.array(frames[sequence_indices(len(frames), self.n)])
        return to_tensor(seq), torch.tensor(int(self.clips.table["label"].iat[i]))


def frame_items(clips: Clips, indices, n_frames: int, per_clip: int | None) -> list:
    return [(int(i), int(t)) for i in indices
            for t in frame_level_indices(int(clips.table["length"].iat[i]), n_frames, per_clip)]


# ------------------------------------------------------------------------ folds


def folds_for(clips: Clips, setup: BaiSetup) -> dict:
    """``{fold name: Fold}`` (subject-grouped when the profile caps the folds)."""
    folds = loso_splits(clips.table["subject"], max_folds=setup.max_folds)
    out = {}
    for f in folds:
        name = "+".join(safe_name(h) for h in f.held_out)
        if len(name) > 60:
            name = f"{safe_name(f.held_out[0])}+{len(f.held_out) - 1}more-{stable_hash(f.held_out, length=6)}"
        out[name] = f
    return out


# ------------------------------------------------------------- l_s: Grad-CAM per stage


def cam_examples(clips: Clips, setup: BaiSetup, n: int | None = None) -> list[int]:
    """Clips whose apex frames feed the l_s criterion: round-robin over the classes
    (first clips of each class in table order), ``n`` in all."""
    n = n or setup.limits.cam_clips
    by_class = [list(np.flatnonzero(clips.table["label"].to_numpy() == c)) for c in range(len(clips.classes))]
    picked = []
    while len(picked) < min(n, len(clips.table)):
        for members in by_class:
            if members and len(picked) < n:
                picked.append(int(members.pop(0)))
    return picked


def apex_frames(clips: Clips, indices) -> np.ndarray:
    """(K, S, S, 3) uint8 apex frames of the given clips."""
    out = []
    for i in indices:
        row = clips.table.iloc[i]
        apex = int(np.clip(row["apex"] - row["onset"], 0, row["length"] - 1))
        out.append(np.array(clips.load(i)[apex]))
    return np.stack(out)


def stage_cams(model: FrameClassifier, frames: np.ndarray, targets=None) -> dict:
    """``{stage: (K, S, S) Grad-CAM}`` for every kept stage; ``targets``: class per
    frame (default: the model's own top class, so no label is needed)."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from melib.training import cpu_threads
    from melib.visualization.cams import layer_cams

    x = to_tensor(frames)
    # A copy: frozen stages have requires_grad off, and Grad-CAM needs their activations'
    # gradients.
    model = copy.deepcopy(model).cpu().eval()
    for p in model.parameters():
        p.requires_grad_(True)
    if targets is None:
        with torch.no_grad(), cpu_threads(1):
            targets = model(x).argmax(1).tolist()
    with cpu_threads(1):
        return layer_cams(model, x, model.stage_modules(),
                          targets=[ClassifierOutputTarget(int(t)) for t in targets])


def region_share(cams: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per frame, the share of CAM mass inside the mask; an all-zero CAM counts as
    uniform (its share is the mask's area share)."""
    cams = np.asarray(cams, np.float64)
    masks = np.asarray(masks, bool)
    total = cams.sum(axis=(1, 2))
    inside = (cams * masks).sum(axis=(1, 2))
    area = masks.mean(axis=(1, 2))
    return np.where(total > 0, inside / np.where(total > 0, total, 1), area)


@dataclass
class LayerChoice:
    """The outcome of :func:`choose_specific_layer`."""

    layer: str
    scores: pd.DataFrame  # per stage: CAM share inside the regions, area share, lift
    clips: list
    frames: np.ndarray
    masks: np.ndarray
    cams: dict
    given: bool = False  # True when the user fixed l_s (scores are still computed)


def initial_model(setup: BaiSetup, n_classes: int) -> FrameClassifier:
    """The network before any training (VGGFace2 weights or torchvision's random init),
    all stages kept, with a freshly initialised fc1-fc3; seeded by ``setup.seed``."""
    runtime.seed_everything(setup.seed)
    # Experiment II from conv1 freezes nothing, so gradients reach every stage for Grad-CAM.
    return FrameClassifier("II", "conv1", n_classes, fc=setup.fc, weights_path=setup.weights_path)


def score_layers(cams: dict, masks: np.ndarray) -> pd.DataFrame:
    area = float(np.mean(masks))
    rows = []
    for stage, c in cams.items():
        share = float(np.mean(region_share(c, masks)))
        side = -(-int(c.shape[1]) // STAGE_STRIDES[stage])
        rows.append({"stage": stage, "feature map": f"{side}x{side}", "CAM share in regions": share,
                     "area share of regions": area, "lift": share / area if area else float("nan")})
    return pd.DataFrame(rows).set_index("stage")


def choose_specific_layer(clips: Clips, setup: BaiSetup) -> LayerChoice:
    """Grad-CAM on every stage of the untrained network; l_s by :data:`LAYER_CRITERION`.

    Deterministic for a seed: the network is built right after seeding, the frames are
    the first clips of each class, and Grad-CAM has no randomness.
    """
    indices = cam_examples(clips, setup)
    frames = apex_frames(clips, indices)
    masks = np.stack([feature_mask(landmarks_in_input(clips, i, setup.alignment, setup.input_size),
                                   setup.input_size) for i in indices])
    model = initial_model(setup, len(clips.classes))
    cams = stage_cams(model, frames)
    scores = score_layers(cams, masks)
    best = str(scores["CAM share in regions"].idxmax())  # idxmax keeps the first (shallowest) of ties
    scores["chosen"] = ["l_s" if s == best else "" for s in scores.index]
    layer = best if setup.specific_layer == "auto" else setup.specific_layer
    return LayerChoice(layer, scores.round(4), indices, frames, masks, cams, given=setup.specific_layer != "auto")


# ------------------------------------------------------------------ frame level (3.1)


@dataclass
class FrameRun:
    """One frame-level LOSO run (one experiment)."""

    name: str
    experiment: str
    layer: str
    setup: BaiSetup
    predictions: pd.DataFrame  # one row per held-out frame (sample = clip#frame)
    clip_predictions: pd.DataFrame  # mean logits over a clip's frames
    evaluation: object
    clip_evaluation: object
    histories: dict
    checkpoints: dict
    folds: dict
    trainable: tuple
    seconds: float = 0.0
    trained_folds: int = 0
    models: dict = field(default_factory=dict, repr=False)  # fold -> trained model, when kept

    def model(self, fold: str, n_classes: int) -> FrameClassifier:
        """The fold's trained classifier (kept in memory, else read from its checkpoint)."""
        if fold in self.models:
            return self.models[fold].eval()
        model = FrameClassifier(self.experiment, self.layer, n_classes, fc=self.setup.fc,
                                weights_path=self.setup.weights_path)
        state = torch.load(self.checkpoints[fold], map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        return model.eval()


def _frame_key(clips: Clips, setup: BaiSetup, experiment: str, layer: str, folds: dict) -> dict:
    return {"dataset": clips.name, "samples": list(map(str, clips.table["sample"])),
            "classes": list(clips.classes), "frames": [Path(p).name for p in clips.frames],
            "experiment": experiment, "layer": layer, "fc": list(setup.fc), "weights": setup.weights_path,
            "n_frames": setup.n_frames, "per_clip": setup.frames_per_clip,
            "folds": {k: list(f.held_out) for k, f in folds.items()}, "augment": "hflip", "version": 1}


def run_frame_level(clips: Clips, setup: BaiSetup, layer: str, experiment: str | None = None,
                    keep_models: bool = True, progress: bool = True) -> FrameRun:
    """Train one frame classifier per fold (fresh from the initial weights) and predict
    the held-out frames; clip predictions average the logits of a clip's frames.

    ``keep_models`` keeps the fold models in memory (about 100 MB each) for encoding
    and Grad-CAM: building a ResNet-50 costs seconds on a busy CPU."""
    experiment = experiment or setup.experiment
    start = time.perf_counter()
    folds = folds_for(clips, setup)
    n_classes = len(clips.classes)
    key = _frame_key(clips, setup, experiment, layer, folds)

    def make_model():
        return FrameClassifier(experiment, layer, n_classes, fc=setup.fc, weights_path=setup.weights_path)

    def make_data(fold):
        items = frame_items(clips, folds[fold].train, setup.n_frames, setup.frames_per_clip)
        return FrameSet(clips, items, train=True, seed=setup.seed)

    folder = runtime.cache_dir("checkpoints", "bai", clips.name, "frames")
    rows, clip_rows, histories, checkpoints, trained, trainable, models = [], [], {}, {}, 0, (), {}
    for result in train_folds(list(folds), make_model, make_data, setup.frame_train_config(), folder, key,
                              progress=progress, desc=f"frame CNN, experiment {experiment}"):
        trained += not result.skipped
        histories[result.fold], checkpoints[result.fold] = result.history, result.checkpoint
        trainable = result.model.trainable_stages()
        if keep_models:
            models[result.fold] = result.model.cpu().eval()
        test = folds[result.fold].test
        items = frame_items(clips, test, setup.n_frames, setup.frames_per_clip)
        logits = predict(result.model, FrameSet(clips, items), batch_size=32, device=setup.device)
        for (i, t), out in zip(items, logits):
            row = clips.table.iloc[i]
            rows.append({"sample": f"{row['sample']}#{t}", "clip": row["sample"], "subject": row["subject"],
                         "true": row["class"], "predicted": clips.classes[int(out.argmax())], "fold": result.fold,
                         "logits": out})
    frames = pd.DataFrame(rows)
    for clip, group in frames.groupby("clip", sort=False):
        mean = np.mean(np.stack(group["logits"].to_list()), axis=0)
        first = group.iloc[0]
        clip_rows.append({"sample": clip, "subject": first["subject"], "true": first["true"],
                          "predicted": clips.classes[int(mean.argmax())], "fold": first["fold"]})
    clip_frame = pd.DataFrame(clip_rows)
    labels = list(clips.classes)
    return FrameRun(f"experiment {experiment}", experiment, layer, setup, frames.drop(columns=["logits"]), clip_frame,
                    evaluate_recognition(frames[["sample", "subject", "true", "predicted"]], labels=labels),
                    evaluate_recognition(clip_frame.drop(columns=["fold"]), labels=labels), histories, checkpoints,
                    folds, trainable, time.perf_counter() - start, trained, models)


def frame_table(runs: list[FrameRun], dataset: str) -> pd.DataFrame:
    """Frame-level scores per experiment (frames pooled over folds; clips by mean
    logits), with the paper's SMIC accuracy beside them."""
    rows = []
    for r in runs:
        f, c = r.evaluation.table.loc["all"], r.clip_evaluation.table.loc["all"]
        rows.append({"experiment": r.experiment, "l_s": "not used" if r.experiment == "I" else r.layer,
                     "trained stages": ", ".join(r.trainable) or "none (fc only)",
                     "frames": int(f["n"]), "frame accuracy": f["accuracy"], "frame UF1": f["UF1"],
                     "frame UAR": f["UAR"], "clip accuracy": c["accuracy"], "clip UF1": c["UF1"],
                     "clip UAR": c["UAR"]})
    out = pd.DataFrame(rows).set_index("experiment").round(4)
    paper = PAPER_RESULTS["frames"]["accuracy"]
    out["paper accuracy (SMIC)"] = (f"{paper:.1%} (one figure for section 3.1)" if dataset == "smic_hs"
                                    else "SMIC only in the proposal")
    return out


# ---------------------------------------------------------------- sequence level (3.2)


@torch.no_grad()
def encode_clips(model: FrameClassifier, clips: Clips, n_values, maps_n: int | None = None,
                 device: str = "auto") -> tuple[dict, np.ndarray | None]:
    """Per N: (n_clips, N, D) fc2 frame vectors of every clip's N-frame sequence; with
    ``maps_n`` also the last kept stage's maps (n_clips, maps_n, C, h, w) float16 for the
    attention decoder. Each distinct frame goes through the CNN once."""
    from melib.training import cpu_threads

    dev = runtime.resolve_device(device)
    model = model.to(dev).eval()
    n_values = sorted(set(int(n) for n in n_values) | ({int(maps_n)} if maps_n else set()))
    feats = {n: None for n in n_values}
    maps = None
    with cpu_threads(1):
        for i in range(len(clips.table)):
            frames = clips.load(i)
            seqs = {n: sequence_indices(len(frames), n) for n in n_values}
            union = np.unique(np.concatenate(list(seqs.values())))
            m = model.feature_maps(to_tensor(np.array(frames[union])).to(dev))
            v = model.head(model.pool(m)).cpu().numpy()
            where = {t: k for k, t in enumerate(union)}
            for n, seq in seqs.items():
                if feats[n] is None:
                    feats[n] = np.zeros((len(clips.table), n, v.shape[1]), np.float32)
                feats[n][i] = v[[where[t] for t in seq]]
            if maps_n:
                mm = m.cpu().numpy().astype(np.float16)
                if maps is None:
                    maps = np.zeros((len(clips.table), maps_n) + mm.shape[1:], np.float16)
                maps[i] = mm[[where[t] for t in seqs[int(maps_n)]]]
    return feats, maps


@dataclass
class Encoded:
    """Per fold, the cached frame features (paths of .npz files)."""

    paths: dict  # fold -> Path
    n_values: tuple
    maps_n: int | None

    def load(self, fold: str, n: int) -> np.ndarray:
        with np.load(self.paths[fold]) as z:
            return z[f"n{n}"]

    def load_maps(self, fold: str) -> np.ndarray:
        with np.load(self.paths[fold]) as z:
            return z["maps"].astype(np.float32)


def encode_folds(clips: Clips, frame_run: FrameRun, setup: BaiSetup, n_values=None, maps_n: int | None = None,
                 progress: bool = True) -> Encoded:
    """Encode every clip with every fold's frame CNN (cached per fold and settings)."""
    n_values = tuple(sorted(set(n_values or setup.limits.n_sweep) | {setup.n_frames}))
    folder = runtime.cache_dir("features", "bai", clips.name, "encoded")
    paths = {}
    for fold in progress_bar(list(frame_run.checkpoints), desc="encode frames", disable=not progress):
        key = stable_hash(Path(frame_run.checkpoints[fold]).name, [Path(p).name for p in clips.frames], n_values,
                          maps_n, "v1")
        path = folder / f"{safe_name(fold)}-{key}.npz"
        if not path.is_file():
            feats, maps = encode_clips(frame_run.model(fold, len(clips.classes)), clips, n_values, maps_n,
                                       setup.device)
            arrays = {f"n{n}": v for n, v in feats.items()}
            if maps is not None:
                arrays["maps"] = maps
            runtime.save_npz(path, **arrays)
        paths[fold] = path
    return Encoded(paths, n_values, maps_n)


@dataclass
class SequenceRun:
    """One sequence-level LOSO run (one decoder, one N)."""

    name: str
    decoder: str
    attention: bool
    n_frames: int
    setup: BaiSetup
    predictions: pd.DataFrame
    evaluation: object
    embeddings: np.ndarray  # held-out sequence embeddings, one per clip (table order)
    histories: dict
    checkpoints: dict
    seconds: float = 0.0
    trained_folds: int = 0

    @property
    def scores(self) -> pd.Series:
        return self.evaluation.table.loc["all"]


def _decoder(setup: BaiSetup, decoder: str, attention: bool, n_frames: int, input_dim: int, n_classes: int):
    return SequenceDecoder(input_dim, decoder, setup.hidden, n_classes, attention=attention, n_frames=n_frames)


def run_sequence_level(clips: Clips, frame_run: FrameRun, encoded: Encoded | None, setup: BaiSetup,
                       decoder: str | None = None, attention: bool | None = None, n_frames: int | None = None,
                       relative: bool = False, progress: bool = True) -> SequenceRun:
    """Train one decoder per fold on that fold's cached frame features (or end to end)
    and predict the held-out clips.

    ``relative`` (ours, not the proposal's): every frame's features minus the onset
    frame's, so that the decoder sees the change over the clip rather than the face."""
    decoder = decoder or setup.decoder
    attention = setup.attention if attention is None else attention
    n = int(n_frames or setup.n_frames)
    start = time.perf_counter()
    folds = frame_run.folds
    n_classes = len(clips.classes)
    labels = clips.table["label"].to_numpy()
    end_to_end = setup.training == "end_to_end"
    if end_to_end and relative:
        raise ValueError("relative=True works on cached features: use training='cached'")
    if not end_to_end and attention and encoded.maps_n != n:
        raise ValueError(f"attention at N = {n} needs the feature maps encoded at that N (encode_folds(maps_n={n}))")
    name = f"{decoder}{' + attention' if attention else ''}{' (minus onset)' if relative else ''}, N = {n}"
    key = {"frame_checkpoints": {f: Path(p).name for f, p in frame_run.checkpoints.items()}, "decoder": decoder,
           "attention": attention, "n": n, "hidden": setup.hidden, "training": setup.training,
           "standardised": True, "relative": relative, "version": 2}

    def inputs(fold):
        x = encoded.load_maps(fold) if attention else encoded.load(fold, n)
        if relative:
            x = x - x[:, :1]
        return standardise(x, folds[fold].train)

    def make_model_for(fold):
        if end_to_end:
            # A copy: end to end trains the CNN too, and the fold's frame model stays as it was.
            return lambda: SequenceClassifier(copy.deepcopy(frame_run.model(fold, n_classes)), decoder, attention,
                                              setup.hidden, n_classes, n_frames=n)
        dim = stage_dim(frame_run) if attention else setup.fc[-1]
        return lambda: _decoder(setup, decoder, attention, n, dim, n_classes)

    def make_data(fold):
        train = folds[fold].train
        if end_to_end:
            return SequenceSet(clips, train, n)
        return inputs(fold)[train], labels[train]

    folder = runtime.cache_dir("checkpoints", "bai", clips.name, "sequences")
    preds, histories, checkpoints, trained = [], {}, {}, 0
    embeddings = None
    config = setup.frame_train_config() if end_to_end else setup.decoder_train_config()
    # End to end, each fold starts from its own frame CNN, so each gets its own call.
    groups = [[f] for f in folds] if end_to_end else [list(folds)]
    for group in groups:
        for result in train_folds(group, make_model_for(group[0]), make_data, config, folder, key,
                                  progress=progress, desc=f"decoder {name}"):
            fold = result.fold
            trained += not result.skipped
            histories[fold], checkpoints[fold] = result.history, result.checkpoint
            test = folds[fold].test
            x = SequenceSet(clips, test, n) if end_to_end else inputs(fold)[test]
            logits = predict(result.model, x, batch_size=16, device=setup.device)
            emb = predict(result.model, x, batch_size=16, device=setup.device, method="embedding")
            if embeddings is None:
                embeddings = np.zeros((len(clips.table), emb.shape[1]), np.float32)
            embeddings[test] = emb
            for i, out in zip(test, logits):
                row = clips.table.iloc[i]
                preds.append({"sample": row["sample"], "subject": row["subject"], "true": row["class"],
                              "predicted": clips.classes[int(out.argmax())], "fold": fold})
    predictions = pd.DataFrame(preds)
    evaluation = evaluate_recognition(predictions.drop(columns=["fold"]), labels=list(clips.classes))
    return SequenceRun(name, decoder, attention, n, setup, predictions, evaluation, embeddings, histories,
                       checkpoints, time.perf_counter() - start, trained)


def standardise(x: np.ndarray, train) -> np.ndarray:
    """Per feature (or map channel), zero mean and unit variance over the training
    subjects' frames. The raw fc2 vectors (ReLU outputs of a few units, often 5-30)
    saturate the LSTM's gates, which then cannot fit even the training clips."""
    axes = (0, 1) if x.ndim == 3 else (0, 1, 3, 4)
    mean = x[train].mean(axis=axes, keepdims=True)[0]
    std = x[train].std(axis=axes, keepdims=True)[0] + 1e-6
    return ((x - mean) / std).astype(np.float32)


def stage_dim(frame_run: FrameRun) -> int:
    from melib.models.bai import stage_channels

    return stage_channels(frame_run.layer if frame_run.experiment == "III" else "layer4")


def _paper_sequence_cell(decoder: str, attention: bool, dataset: str) -> str:
    if attention:
        return "planned (4.2): no result"
    if decoder in ("lstm", "bilstm"):
        acc = PAPER_RESULTS["sequence"]["accuracy"]
        return (f"{acc:.2%} (VGGFace2 + LSTM; direction not stated)" if dataset == "smic_hs"
                else "SMIC only in the proposal")
    return "planned (4): no result"


def decoder_ablation(clips: Clips, frame_run: FrameRun, encoded: Encoded, setup: BaiSetup,
                     main: SequenceRun | None = None, progress: bool = True) -> tuple[pd.DataFrame, list]:
    """A row per decoder at the main N, then the main decoder with spatial attention,
    then (ours) the main decoder on features minus the onset frame's; ``main`` is
    reused for its own row."""
    variants = [(d, False, False) for d in setup.limits.decoders] + [(setup.decoder, True, False)]
    if setup.training == "cached":  # the onset difference is taken on cached features
        variants.append((setup.decoder, False, True))
    rows, runs = [], []
    for decoder, attention, relative in variants:
        if main is not None and not relative and \
                (main.decoder, main.attention, main.n_frames) == (decoder, attention, setup.n_frames):
            run = main
        else:
            run = run_sequence_level(clips, frame_run, encoded, setup, decoder, attention, relative=relative,
                                     progress=progress)
        runs.append(run)
        s = run.scores
        label = decoder + (" + attention" if attention else "") + (", features minus onset" if relative else "")
        rows.append({"decoder": label,
                     "in the proposal": "ours (not in the proposal)" if relative
                     else STATUS["attention" if attention else decoder], "N": setup.n_frames,
                     "clips": int(s["n"]), "accuracy": s["accuracy"], "UF1": s["UF1"], "UAR": s["UAR"],
                     "paper accuracy (SMIC)": "no such experiment" if relative
                     else _paper_sequence_cell(decoder, attention, setup.dataset)})
    return pd.DataFrame(rows).set_index("decoder").round(4), runs


def n_sweep(clips: Clips, frame_run: FrameRun, encoded: Encoded, setup: BaiSetup, main: SequenceRun | None = None,
            progress: bool = True) -> tuple[pd.DataFrame, list]:
    """The main decoder (without attention) for every N of the profile's sweep."""
    rows, runs = [], []
    for n in setup.limits.n_sweep:
        if main is not None and not main.attention and main.n_frames == n and main.decoder == setup.decoder:
            run = main
        else:
            run = run_sequence_level(clips, frame_run, encoded, setup, setup.decoder, False, n, progress=progress)
        runs.append(run)
        s = run.scores
        rows.append({"N": n, "accuracy": s["accuracy"], "UF1": s["UF1"], "UAR": s["UAR"],
                     "paper": "tested 11..17; per-N results not given"})
    return pd.DataFrame(rows).set_index("N").round(4), runs


@dataclass
class Pipeline:
    """Everything one full pass produces: frame level, encoding, the main decoder."""

    clips: Clips
    frame_run: FrameRun
    encoded: Encoded
    sequence_run: SequenceRun


def run_pipeline(clips: Clips, setup: BaiSetup, layer: str, n_values=None, progress: bool = True) -> Pipeline:
    """Frame CNN per fold, cached encodings, then the main decoder (used by the EVM ablation)."""
    frame_run = run_frame_level(clips, setup, layer, progress=progress)
    encoded = encode_folds(clips, frame_run, setup, n_values=n_values,
                           maps_n=setup.n_frames if setup.attention else None, progress=progress)
    return Pipeline(clips, frame_run, encoded, run_sequence_level(clips, frame_run, encoded, setup, progress=progress))


def comparison_table(frame_run: FrameRun, sequence_run: SequenceRun, dataset: str) -> pd.DataFrame:
    """Our headline numbers beside the proposal's two (SMIC accuracy, labelled as the paper's)."""
    on_smic = dataset == "smic_hs"
    frames_paper = PAPER_RESULTS["frames"]["accuracy"] if on_smic else float("nan")
    what = f"experiment {frame_run.experiment}, l_s {frame_run.layer}"
    rows = []
    for level, ours, unit, table, paper in (
            ("frames only (3.1)", what, "held-out frames", frame_run.evaluation.table, frames_paper),
            ("frames only (3.1)", what + ", mean logits per clip", "clips", frame_run.clip_evaluation.table,
             frames_paper),
            ("sequence (3.2)", sequence_run.name, "clips", sequence_run.evaluation.table,
             PAPER_RESULTS["sequence"]["accuracy"] if on_smic else float("nan"))):
        s = table.loc["all"]
        rows.append({"level": level, "ours": ours, "scored": f"{int(s['n'])} {unit}", "accuracy": s["accuracy"],
                     "UF1": s["UF1"], "UAR": s["UAR"], "paper accuracy (SMIC)": paper})
    out = pd.DataFrame(rows).set_index("level").round(4)
    if not on_smic:
        out["paper accuracy (SMIC)"] = "SMIC only in the proposal"
    return out


def evm_ablation(setup: BaiSetup, layer: str, reference: Pipeline, progress: bool = True) -> tuple[pd.DataFrame, Pipeline]:
    """The whole pipeline again with EVM toggled (frame CNN retrained on the other frames)."""
    other_setup = setup.with_(magnify=not reference.clips.magnified)
    other_clips = prepare(other_setup, progress=progress)
    other = run_pipeline(other_clips, other_setup, layer, n_values=(setup.n_frames,), progress=progress)
    rows = []
    for p in sorted([reference, other], key=lambda p: p.clips.magnified):
        f, s = p.frame_run.clip_evaluation.table.loc["all"], p.sequence_run.scores
        rows.append({"EVM": f"on (alpha {setup.alpha:g}, {setup.low_hz:g}-{setup.high_hz:g} Hz)"
                     if p.clips.magnified else "off",
                     "frame CNN clip accuracy": f["accuracy"], "sequence accuracy": s["accuracy"],
                     "sequence UF1": s["UF1"], "sequence UAR": s["UAR"],
                     "paper": "planned (4.3): no result"})
    return pd.DataFrame(rows).set_index("EVM").round(4), other


def training_summary(frame_runs: list, sequence_runs: list) -> pd.DataFrame:
    rows = []
    for r in list(frame_runs) + list(sequence_runs):
        last = [h["epoch_loss"][-1] for h in r.histories.values() if h.get("epoch_loss")]
        rows.append({"run": r.name, "folds": len(r.checkpoints), "final loss (mean over folds)":
                     round(float(np.mean(last)), 4) if last else float("nan")})
    return pd.DataFrame(rows).set_index("run")


def timing_table(runs: list) -> pd.DataFrame:
    return pd.DataFrame([{"run": r.name, "folds trained": r.trained_folds,
                          "folds from checkpoints": len(r.checkpoints) - r.trained_folds,
                          "seconds": round(r.seconds, 1)} for r in runs]).set_index("run")


# ------------------------------------------------------------------------ figures


def cams_after_training(frame_run: FrameRun, clips: Clips, choice: LayerChoice) -> dict:
    """The same frames' Grad-CAMs per stage, each by the model of the fold that held
    its clip out (after training), for the stages that model keeps."""
    fold_of = {}
    for fold, f in frame_run.folds.items():
        for i in f.test:
            fold_of[int(i)] = fold
    out = {}
    for k, i in enumerate(choice.clips):
        model = frame_run.model(fold_of[i], len(clips.classes))
        cams = stage_cams(model, choice.frames[k:k + 1])
        for stage, c in cams.items():
            out.setdefault(stage, []).append(c[0])
    return {stage: np.stack(v) for stage, v in out.items()}


def cam_shift_table(choice: LayerChoice, after: dict) -> pd.DataFrame:
    """CAM share inside the landmark regions per stage, before and after training."""
    before = score_layers(choice.cams, choice.masks)["CAM share in regions"]
    after_scores = score_layers(after, choice.masks)["CAM share in regions"]
    out = pd.DataFrame({"before training": before, "after training": after_scores})
    out["area share of regions"] = float(np.mean(choice.masks))
    return out.round(4)


def gradcam_figure(choice: LayerChoice, after: dict | None, clips: Clips, max_rows: int = 3):
    """The paper's figure 4, per stage: rows alternate before / after training for a
    few apex frames; the landmark regions the criterion counts are outlined."""
    import matplotlib.pyplot as plt

    n = min(max_rows, len(choice.clips))
    rows = [("before", k) for k in range(n)]
    if after:
        rows = [r for k in range(n) for r in (("before", k), ("after", k))]
    stages = list(choice.cams)
    fig, axes = plt.subplots(len(rows), len(stages) + 1, figsize=(1.7 * (len(stages) + 1), 1.75 * len(rows)),
                             squeeze=False)
    for r, (when, k) in enumerate(rows):
        image = choice.frames[k]
        row = clips.table.iloc[choice.clips[k]]
        axes[r, 0].imshow(image)
        axes[r, 0].contour(choice.masks[k], levels=[0.5], colors="w", linewidths=0.8)
        axes[r, 0].set_ylabel(f"{row['class']}\n{when}", fontsize=7)
        source = choice.cams if when == "before" else after
        for c, stage in enumerate(stages, start=1):
            ax = axes[r, c]
            ax.imshow(image.mean(axis=2), cmap="gray")
            if stage in source:
                ax.imshow(source[stage][k], cmap="jet", alpha=0.5, vmin=0, vmax=1)
            else:
                ax.text(0.5, 0.5, "removed", ha="center", va="center", transform=ax.transAxes, fontsize=7)
            ax.contour(choice.masks[k], levels=[0.5], colors="w", linewidths=0.5)
            if r == 0:
                ax.set_title(stage + (" (l_s)" if stage == choice.layer else ""), fontsize=8)
    axes[0, 0].set_title("apex frame", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Grad-CAM per ResNet-50 stage, before and after training (white: landmark regions)", fontsize=9)
    fig.tight_layout()
    return fig


def sequence_figure(clips: Clips, setup: BaiSetup, index: int = 0):
    """The N frames sampled from onset to offset for one clip."""
    import matplotlib.pyplot as plt

    frames = clips.load(index)
    seq = sequence_indices(len(frames), setup.n_frames)
    row = clips.table.iloc[index]
    fig, axes = plt.subplots(1, len(seq), figsize=(1.1 * len(seq), 1.5), squeeze=False)
    for ax, t in zip(axes[0], seq):
        ax.imshow(frames[t])
        ax.set_title(f"{row['onset'] + t}", fontsize=7)
        ax.axis("off")
    fig.suptitle(f"{row['sample']} ({row['class']}): N = {setup.n_frames} frames, onset {row['onset']} to offset "
                 f"{row['offset']} ({ALIGNMENT_LABELS[setup.alignment]})", fontsize=8)
    fig.tight_layout()
    return fig


def magnification_figure(original: Clips, magnified: Clips, index: int = 0, n_show: int = 5, gain: float = 4.0):
    """Original and magnified frames of one clip, and each one's difference to the
    onset frame (x``gain`` for display)."""
    import matplotlib.pyplot as plt

    a, b = original.load(index), magnified.load(index)
    times = sequence_indices(len(a), n_show)
    row = original.table.iloc[index]
    panels = [("original", lambda t: a[t]), ("magnified", lambda t: b[t]),
              ("|original - onset|", lambda t: _difference(a[t], a[0], gain)),
              ("|magnified - onset|", lambda t: _difference(b[t], b[0], gain))]
    fig, axes = plt.subplots(len(panels), len(times), figsize=(1.6 * len(times), 1.6 * len(panels)), squeeze=False)
    for r, (label, get) in enumerate(panels):
        for c, t in enumerate(times):
            axes[r, c].imshow(get(t))
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if r == 0:
                axes[r, c].set_title(f"frame {row['onset'] + t}", fontsize=7)
        axes[r, 0].set_ylabel(label, fontsize=7)
    fig.suptitle(f"Eulerian magnification, {row['sample']} ({row['class']}); differences x{gain:g}", fontsize=9)
    fig.tight_layout()
    return fig


def _difference(frame: np.ndarray, reference: np.ndarray, gain: float) -> np.ndarray:
    d = np.abs(frame.astype(np.float32) - reference.astype(np.float32)).mean(axis=2)
    return np.clip(d * gain, 0, 255).astype(np.uint8)


def motion_gain(original: Clips, magnified: Clips) -> pd.DataFrame:
    """Mean |frame - onset| per clip, original vs magnified (EVM should raise it)."""
    rows = []
    for i in range(len(original.table)):
        a, b = original.load(i).astype(np.float32), magnified.load(i).astype(np.float32)
        rows.append({"sample": original.table["sample"].iat[i], "original": float(np.abs(a - a[:1]).mean()),
                     "magnified": float(np.abs(b - b[:1]).mean())})
    t = pd.DataFrame(rows).set_index("sample")
    t["ratio"] = t["magnified"] / t["original"].where(t["original"] > 0)
    return t.round(4)


def loss_figure(runs: list):
    import matplotlib.pyplot as plt

    from melib.visualization.training import plot_loss_curves

    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.0), squeeze=False)
    for ax, r in zip(axes[0], runs):
        plot_loss_curves(r.histories, ax=ax, title=r.name)
    fig.tight_layout()
    return fig


def tsne_figure(clips: Clips, runs: list, seed: int = 0):
    """t-SNE of the held-out sequence embeddings (each clip embedded by the decoder of
    the fold that held it out), one panel per run."""
    import matplotlib.pyplot as plt

    from melib.visualization.embedding import plot_embedding, tsne

    labels = clips.table["class"].to_numpy()
    palette = dict(zip(clips.classes, ["tab:red", "tab:green", "tab:blue", "tab:orange", "tab:purple",
                                       "tab:brown", "tab:pink", "tab:gray"]))
    fig, axes = plt.subplots(1, len(runs), figsize=(3.6 * len(runs), 3.5), squeeze=False)
    for ax, r in zip(axes[0], runs):
        if len(labels) < 5:  # t-SNE needs a few points (a tiny corpus mapped to 3 classes has fewer)
            ax.text(0.5, 0.5, f"{len(labels)} clips: too few for t-SNE", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
            ax.set_title(r.name, fontsize=8)
            ax.axis("off")
            continue
        xy = tsne(r.embeddings, seed=seed)
        plot_embedding(xy, labels, ax=ax, palette=palette, order=list(clips.classes), size=22,
                       title=f"{r.name} ({len(labels)} clips)")
        ax.title.set_fontsize(8)
    fig.suptitle("t-SNE of held-out sequence embeddings (each fold's own decoder)", fontsize=9)
    fig.tight_layout()
    return fig


__all__ = [
    "PROFILES", "PAPER_RESULTS", "LAYER_CRITERION", "BaiSetup", "configure", "caveats", "paper_table",
    "paper_silent", "Clips", "prepare", "label_table", "sequence_indices", "frame_level_indices", "read_clip",
    "feature_mask", "region_share", "choose_specific_layer", "LayerChoice", "run_frame_level", "frame_table",
    "encode_folds", "run_sequence_level", "decoder_ablation", "n_sweep", "run_pipeline", "evm_ablation",
    "comparison_table", "training_summary", "timing_table", "cams_after_training", "cam_shift_table", "gradcam_figure",
    "sequence_figure", "magnification_figure", "motion_gain", "loss_figure", "tsne_figure",
]
