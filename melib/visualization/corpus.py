"""Figures about the synthetic corpus (``melib.data.synth``) for the data notebook.

All functions take a corpus root (``melib.data.synth.ensure_corpus(...)``) and return a
Matplotlib ``Figure``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from melib.data import facs
from melib.data.synth import load_manifest, plan_corpus
from melib.data.synth_check import flow_signal, sorted_frames

TYPE_COLOURS = {"micro": "tab:red", "macro": "tab:green"}


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _video(root, dataset: str, video) -> dict:
    videos = load_manifest(root, dataset)["videos"]
    if isinstance(video, int):
        return videos[video]
    for v in videos:
        if v["video"] == video or v["folder"] == video:
            return v
    raise KeyError(
        f"{dataset}: no video {video!r} in the manifest; choose one of "
        f"{', '.join(v['video'] for v in videos)}"
    )


def plot_identities(
    root,
    datasets=("casme_sq", "samm_lv", "smic_e_long", "casme2", "samm", "smic_hs"),
    per_dataset: int = 2,
    size: float = 1.8,
):
    """First frame of the first video of a few subjects per dataset: distinct identities."""
    import matplotlib.pyplot as plt

    tiles = []
    for key in datasets:
        seen = []
        for v in load_manifest(root, key)["videos"]:
            if v["identity"] in seen:
                continue
            seen.append(v["identity"])
            tiles.append((f"{key}\n{v['subject']}", Path(root) / key / v["folder"] / v["first_file"]))
            if len(seen) >= per_dataset:
                break
    ncols = min(6, len(tiles))
    nrows = int(np.ceil(len(tiles) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * 1.1), squeeze=False)
    for ax, (title, path) in zip(axes.flat, tiles):
        ax.imshow(_rgb(path))
        ax.set_title(title, fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle("Synthetic subjects (frame 1 of a video each)", fontsize=10)
    fig.tight_layout()
    return fig


def _plan_for(root, dataset: str, video: dict):
    """The generator's own timeline for a video (AU, blink, rigid and gain tracks)."""
    manifest = load_manifest(root, dataset)
    plans = plan_corpus(manifest["preset"], manifest["seed"], [dataset])[dataset]
    return next(p for p in plans if p.rel_dir == video["folder"])


def plot_video_timeline(root, dataset: str = "casme_sq", video=0, with_flow: bool = True):
    """One video's labelled events, unlabelled distractors, and what a flow signal sees.

    Panels: AU intensity tracks per event with its label; blink closure; rigid head
    motion (px and degrees); illumination gain; and (``with_flow``) the mean Farneback
    magnitude in the face box between frames i and i + 0.2 s.
    """
    import matplotlib.pyplot as plt

    from melib.data.synth import _au_tracks

    v = _video(root, dataset, video)
    plan = _plan_for(root, dataset, v)
    tracks, blink = _au_tracks(plan)
    t = np.arange(plan.n_frames)
    n_panels = 5 if with_flow else 4
    fig, axes = plt.subplots(n_panels, 1, figsize=(12, 1.5 * n_panels + 0.6), sharex=True)
    ax = axes[0]
    for key, track in tracks.items():
        ax.plot(t, track, lw=1, label=f"AU{key if isinstance(key, int) else ''.join(map(str, key[::-1]))}")
    for ev in v["events"]:
        i = ev["index"]
        ax.axvspan(i["onset"], i["offset"], color=TYPE_COLOURS[ev["type"]], alpha=0.15)
        ax.text(
            i["onset"],
            ax.get_ylim()[1] if ax.get_ylim()[1] > 0 else 1,
            f"{ev['type']}\n{ev['aus']}\n{ev['emotion']}",
            fontsize=7,
            va="top",
        )
    ax.set_ylabel("AU intensity")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(
        f"{dataset} / {v['folder']} ({plan.fps} fps): labelled events "
        "(green macro, red micro) and unlabelled distractors",
        fontsize=10,
    )
    axes[1].plot(t, blink, color="tab:blue", lw=1)
    axes[1].set_ylabel("blink")
    axes[2].plot(t, plan.rigid[:, 0], label="x px", lw=1)
    axes[2].plot(t, plan.rigid[:, 1], label="y px", lw=1)
    axes[2].plot(t, plan.rigid[:, 2], label="roll °", lw=1)
    for m in v["distractors"]["head_movements"]:
        axes[2].axvspan(m["onset"], m["offset"], color="tab:orange", alpha=0.25)
    axes[2].set_ylabel("head")
    axes[2].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes[3].plot(t, plan.gain, color="tab:gray", lw=1)
    axes[3].set_ylabel("light gain")
    if with_flow:
        step = max(1, int(round(0.2 * plan.fps)))
        signal = flow_signal(
            Path(root) / dataset / v["folder"], v["face_box"], step, stride=max(1, plan.fps // 50)
        )
        axes[4].plot(np.arange(len(signal)) + step // 2, signal, color="k", lw=0.8)
        for ev in v["events"]:
            i = ev["index"]
            axes[4].axvspan(i["onset"], i["offset"], color=TYPE_COLOURS[ev["type"]], alpha=0.15)
        for b in v["distractors"]["blinks"]:
            axes[4].axvspan(b["onset"], b["offset"], color="tab:blue", alpha=0.12)
        for m in v["distractors"]["head_movements"]:
            axes[4].axvspan(m["onset"], m["offset"], color="tab:orange", alpha=0.25)
        axes[4].set_ylabel("flow px")
    axes[-1].set_xlabel("frame index (0-based)")
    fig.tight_layout()
    return fig


def plot_au_fields(
    aus=(1, 4, 12, 15, 26, 45),
    identity: str | None = None,
    root=None,
    dataset: str = "casme_sq",
    intensity: float = 1.0,
    step: int = 8,
    size: float = 2.6,
):
    """Each AU's dense displacement field (arrows, magnitude as colour) on a subject.

    Uses the identity of ``root``'s first ``dataset`` video when given, else a demo
    subject built from the astronaut portrait.
    """
    import matplotlib.pyplot as plt

    ident = _identity(root, dataset, identity)
    h, w = ident.image.shape[:2]
    rgb = cv2.cvtColor(np.clip(ident.image, 0, 255).astype(np.uint8), cv2.COLOR_BGR2RGB)
    fig, axes = plt.subplots(2, len(aus), figsize=(size * len(aus), size * 2.05), squeeze=False)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    for col, au in enumerate(aus):
        field = ident.fields[au] * intensity
        mag = np.sqrt((field**2).sum(-1))
        ax = axes[0, col]
        ax.imshow(rgb)
        ax.imshow(mag, cmap="magma", alpha=0.45)
        ys, xs = np.mgrid[step // 2 : h : step, step // 2 : w : step]
        # the field is backward (where each pixel samples from): arrows show the motion
        u, v = -field[ys, xs, 0], -field[ys, xs, 1]
        keep = np.hypot(u, v) > 0.15
        ax.quiver(
            xs[keep],
            ys[keep],
            u[keep],
            v[keep],
            color="cyan",
            angles="xy",
            scale_units="xy",
            scale=0.25,
            width=0.008,
        )
        ax.set_title(f"AU{au} {facs.AU_NAMES[au]}\npeak {mag.max():.1f} px", fontsize=8)
        warped = cv2.remap(
            ident.image,
            gx + field[..., 0],
            gy + field[..., 1],
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT101,
        )
        if au == 45:
            blend = ident.image + (ident.closed_eyes - ident.image) * ident.eye_mask * intensity
            warped = cv2.remap(
                blend,
                gx + field[..., 0],
                gy + field[..., 1],
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REFLECT101,
            )
        axes[1, col].imshow(cv2.cvtColor(np.clip(warped, 0, 255).astype(np.uint8), cv2.COLOR_BGR2RGB))
        axes[1, col].set_title(f"warped, intensity {intensity:g}", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    return fig


def _identity(root, dataset: str, identity: str | None):
    from melib.data import synth
    from melib.data.synth_faces import astronaut_portraits

    if root is not None:
        manifest = load_manifest(root, dataset)
        key = identity or manifest["videos"][0]["identity"]
        plan = next(
            p
            for p in plan_corpus(manifest["preset"], manifest["seed"], [dataset])[dataset]
            if p.family_key == key
        )
        return synth._identities([plan], manifest["seed"], list(astronaut_portraits()), {})[key]
    from melib.data.synth_faces import build_identity, draw_identity_params

    params = draw_identity_params(np.random.default_rng(0))
    return build_identity(
        identity or "demo", astronaut_portraits()[0], params, synth.CANVAS, synth.FACE_WIDTH
    )


def plot_micro_vs_macro(
    root, datasets=("casme_sq", "samm_lv", "casme2"), amplify: float = 4.0, size: float = 2.4
):
    """Onset, apex and |apex - onset| (same colour scale) for one micro and one macro event.

    Each type comes from the first of ``datasets`` that has one (a tiny corpus may hold
    no CAS(ME)² micro-expression).
    """
    import matplotlib.pyplot as plt

    if isinstance(datasets, str):
        datasets = (datasets,)
    picks = {}
    for dataset in datasets:
        for v in load_manifest(root, dataset)["videos"]:
            for ev in v["events"]:
                picks.setdefault(ev["type"], (dataset, v, ev))
    fig, axes = plt.subplots(len(picks), 3, figsize=(size * 3.3, size * len(picks) * 1.05), squeeze=False)
    for row, kind in enumerate(sorted(picks, reverse=True)):
        dataset, v, ev = picks[kind]
        frames = sorted_frames(Path(root) / dataset / v["folder"])
        onset = _rgb(frames[ev["index"]["onset"]]).astype(np.float32)
        apex = _rgb(frames[ev["index"]["apex"]]).astype(np.float32)
        diff = np.abs(apex - onset).mean(-1)
        axes[row, 0].imshow(onset.astype(np.uint8))
        axes[row, 0].set_title(f"{dataset} {kind} onset (frame {ev['index']['onset']})", fontsize=8)
        axes[row, 1].imshow(apex.astype(np.uint8))
        axes[row, 1].set_title(f"apex: AU {ev['aus']}, {ev['emotion']}", fontsize=8)
        im = axes[row, 2].imshow(diff, cmap="inferno", vmin=0, vmax=255 / amplify)
        axes[row, 2].set_title(f"|apex - onset|, peak motion {ev['peak_displacement_px']:.2f} px", fontsize=8)
        fig.colorbar(im, ax=axes[row, 2], fraction=0.046, pad=0.04)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_detector_f1(table, ax=None):
    """Bars of the naive detector's F1 per dataset and type, beside chance."""
    import matplotlib.pyplot as plt

    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3))
    labels = [f"{d}\n{t}" for d, t in zip(table["dataset"], table["type"])]
    x = np.arange(len(labels))
    ax.bar(x - 0.2, table["f1"], 0.4, label="naive flow detector")
    ax.bar(x + 0.2, table["chance_f1"], 0.4, label="same intervals, random places")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("F1 (IoU ≥ 0.5)")
    ax.legend(fontsize=8)
    return fig or ax.figure
