"""Synthetic identities for the corpus: base portraits, shape morphs, AU motion fields.

A subject is built once: the base portrait (scikit-image's public-domain astronaut, or a
user portrait) is cropped so that the jaw is ~128 px wide, reshaped by a smooth
landmark-driven warp, recoloured, and maybe mirrored. Its AU templates are then turned
into dense displacement fields by Gaussian RBF interpolation of the landmark
displacements, so every frame afterwards is one ``cv2.remap`` with a weighted sum of
precomputed fields; nothing is re-triangulated per frame.

dlib is used directly here: ``melib.face`` sits above ``melib.data``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from melib.data import facs

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass
class Portrait:
    name: str
    image: np.ndarray  # BGR uint8
    landmarks: np.ndarray  # (68, 2) float32, image coordinates


@dataclass
class Identity:
    """One synthetic subject at canvas resolution, ready to render frames."""

    key: str
    image: np.ndarray  # (H, W, 3) float32 BGR, 0..255
    closed_eyes: np.ndarray  # same image with both eyes shut (blink blend target)
    eye_mask: np.ndarray  # (H, W, 1) float32 soft mask of the eye openings
    eye_box: tuple[int, int, int, int]  # y0, y1, x0, x1 bounding the eye mask
    landmarks: np.ndarray  # (68, 2) float32 canvas coordinates
    fields: dict[int, np.ndarray]  # AU -> (H, W, 2) float32 backward displacement, px
    params: dict = field(default_factory=dict)

    @property
    def face_box(self) -> list[int]:
        """x0, y0, x1, y1 around the landmarks, widened to include the forehead."""
        x0, y0 = self.landmarks.min(0)
        x1, y1 = self.landmarks.max(0)
        h, w = self.image.shape[:2]
        top = y0 - 0.25 * (y1 - y0)
        return [
            int(max(0, np.floor(x0))),
            int(max(0, np.floor(top))),
            int(min(w - 1, np.ceil(x1))),
            int(min(h - 1, np.ceil(y1))),
        ]

    def field_for(self, au: int, side: str = "") -> np.ndarray:
        if not side:
            return self.fields[au]
        return self.fields[(au, side)]


# --------------------------------------------------------------------------- portraits


@functools.lru_cache(maxsize=1)
def _dlib_models():
    import dlib

    from melib.runtime import dlib_landmark_model_path

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(dlib_landmark_model_path()))


def detect_landmarks(image_bgr: np.ndarray) -> np.ndarray | None:
    """68 landmarks of the largest face, or None. Tries 1x then 2x upsampling."""
    detector, predictor = _dlib_models()
    rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
    for upsample in (0, 1):
        rects = detector(rgb, upsample)
        if len(rects):
            rect = max(rects, key=lambda r: r.width() * r.height())
            shape = predictor(rgb, rect)
            return np.array([[p.x, p.y] for p in shape.parts()], np.float32)
    return None


@functools.cache
def astronaut_portraits() -> tuple[Portrait, Portrait]:
    """The astronaut and its mirror, each with its own dlib landmarks.

    Re-detecting on the mirrored image (instead of flipping x coordinates) keeps dlib's
    left/right point order, which the AU templates rely on.
    """
    from skimage import data

    image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    out = []
    for name, img in (("astronaut", image), ("astronaut-mirrored", image[:, ::-1].copy())):
        marks = detect_landmarks(img)
        if marks is None:  # pragma: no cover - the bundled photo always has a face
            raise RuntimeError("dlib found no face in skimage.data.astronaut()")
        out.append(Portrait(name, img, marks))
    return tuple(out)


def load_user_portraits(folder: str | Path) -> list[Portrait]:
    """Every image in ``folder`` as a portrait pair (original, mirrored)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"--faces {folder}: not a folder. Fix: pass a folder of frontal portrait images "
            f"({', '.join(sorted(IMAGE_SUFFIXES))})."
        )
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(
            f"--faces {folder}: no image files found. Fix: add frontal portraits "
            f"({', '.join(sorted(IMAGE_SUFFIXES))})."
        )
    portraits = []
    for path in files:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(
                f"--faces: {path} could not be decoded as an image. "
                "Fix: re-save it as JPEG or PNG, or remove it."
            )
        marks = detect_landmarks(image)
        if marks is None:
            raise ValueError(
                f"--faces: dlib found no face in {path}. Fix: use a frontal, well-lit "
                "portrait whose face is at least ~100 px wide, or remove the file."
            )
        mirrored = image[:, ::-1].copy()
        mirrored_marks = detect_landmarks(mirrored)
        portraits.append(Portrait(path.stem, image, marks))
        if mirrored_marks is not None:
            portraits.append(Portrait(path.stem + "-mirrored", mirrored, mirrored_marks))
    return portraits


# --------------------------------------------------------------------------- RBF fields


def rbf_field(
    points: np.ndarray,
    displacements: np.ndarray,
    shape: tuple[int, int],
    sigma: float,
    region: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """Dense (H, W, 2 * K) field interpolating K displacement sets given at ``points``.

    Gaussian RBF with a small ridge: exact enough at the landmarks, smooth between them,
    and falling to zero a few sigma away, so motion stays local to the moving features.
    ``displacements`` is (N, 2K). ``region`` (y0, y1, x0, x1) limits the work.
    """
    h, w = shape
    y0, y1, x0, x1 = region or (0, h, 0, w)
    pts = points.astype(np.float64)
    d2 = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
    kernel = np.exp(-d2 / (2 * sigma**2))
    weights = np.linalg.solve(kernel + 0.05 * np.eye(len(pts)), displacements.astype(np.float64))
    ys, xs = np.mgrid[y0:y1, x0:x1]
    grid = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    g2 = ((grid[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
    dense = np.exp(-g2 / (2 * sigma**2)) @ weights
    out = np.zeros((h, w, displacements.shape[1]), np.float32)
    out[y0:y1, x0:x1] = dense.reshape(y1 - y0, x1 - x0, -1)
    return out


def _extra_points(marks: np.ndarray) -> np.ndarray:
    """Static anchors (forehead, cheeks, temples) so that fields do not leak far."""
    center = marks[27:36].mean(0)
    width = np.linalg.norm(marks[16] - marks[0])
    brow_mid = marks[17:27].mean(0)
    anchors = [brow_mid + np.array([dx * width, -0.22 * width]) for dx in (-0.3, 0, 0.3)]
    anchors += [marks[2] + (center - marks[2]) * 0.5 + np.array([0, 0.08 * width])]
    anchors += [marks[14] + (center - marks[14]) * 0.5 + np.array([0, 0.08 * width])]
    anchors += [marks[8] + np.array([0, 0.15 * width])]
    return np.array(anchors, np.float32)


# --------------------------------------------------------------------------- identities


def _shape_targets(marks: np.ndarray, p: dict) -> np.ndarray:
    """Landmarks after the identity's face-width / eye / nose / mouth changes."""
    out = marks.copy()
    center = marks[27:36].mean(0)
    jaw = np.array(facs.JAW)
    out[jaw, 0] = center[0] + (marks[jaw, 0] - center[0]) * p["face_width"]
    out[jaw[4:13], 1] = marks[jaw[4:13], 1] + p["jaw_drop"] * np.hanning(11)[1:-1]
    for group, sign in (
        (facs.EYE_IMG_LEFT + facs.BROW_IMG_LEFT, -1),
        (facs.EYE_IMG_RIGHT + facs.BROW_IMG_RIGHT, 1),
    ):
        out[group, 0] += sign * p["eye_spacing"]
    brows = facs.BROW_IMG_LEFT + facs.BROW_IMG_RIGHT
    out[brows, 1] -= p["brow_height"]
    nose = facs.NOSTRILS + [30]
    out[nose, 1] += p["nose_length"]
    out[facs.NOSTRILS, 0] = center[0] + (marks[facs.NOSTRILS, 0] - center[0]) * p["nose_width"]
    mouth = np.array(facs.OUTER_LIP + facs.INNER_LIP)
    mouth_c = marks[mouth].mean(0)
    out[mouth, 0] = mouth_c[0] + (marks[mouth, 0] - mouth_c[0]) * p["mouth_width"]
    out[mouth, 1] = mouth_c[1] + (marks[mouth, 1] - mouth_c[1]) * p["lip_thickness"]
    out[mouth, 1] += p["mouth_drop"]
    return out


def draw_identity_params(rng: np.random.Generator) -> dict:
    return {
        "face_width": float(rng.uniform(0.9, 1.1)),
        "jaw_drop": float(rng.uniform(-4, 5)),
        "eye_spacing": float(rng.uniform(-2.5, 2.5)),
        "brow_height": float(rng.uniform(-2, 3)),
        "nose_length": float(rng.uniform(-3, 3)),
        "nose_width": float(rng.uniform(0.85, 1.2)),
        "mouth_width": float(rng.uniform(0.88, 1.12)),
        "lip_thickness": float(rng.uniform(0.85, 1.25)),
        "mouth_drop": float(rng.uniform(-2, 3)),
        "scale_jitter": float(rng.uniform(0.95, 1.05)),
        "roll_deg": float(rng.uniform(-3, 3)),
        "shift": [float(v) for v in rng.uniform(-4, 4, 2)],
        "skin_a": float(rng.uniform(-6, 8)),
        "skin_b": float(rng.uniform(-8, 10)),
        "lightness": float(rng.uniform(-18, 10)),
        "gamma": float(rng.uniform(0.8, 1.25)),
        "light_gradient": float(rng.uniform(0.0, 0.3)),
        "light_angle_deg": float(rng.uniform(0, 360)),
        "background_hue": float(rng.uniform(-12, 12)),
    }


def build_identity(
    key: str, portrait: Portrait, params: dict, canvas: tuple[int, int], face_width: float
) -> Identity:
    h, w = canvas
    marks = portrait.landmarks
    width_src = np.linalg.norm(marks[16] - marks[0])
    scale = face_width / width_src * params["scale_jitter"]
    center_src = marks[[27, 28, 29, 30, 8, 36, 45]].mean(0)
    # put the face a bit below the canvas centre, leaving room for the forehead
    center_dst = np.array([w / 2, h * 0.5 + 0.02 * face_width]) + np.array(params["shift"])
    rot = cv2.getRotationMatrix2D((0, 0), params["roll_deg"], scale)
    offset = center_dst - rot[:, :2] @ center_src
    affine = np.hstack([rot[:, :2], offset[:, None]]).astype(np.float64)
    marks_canvas = (marks @ affine[:, :2].T + affine[:, 2]).astype(np.float32)

    # the morph is small compared with its smoothness, so negating the forward
    # displacement is an accurate backward map
    targets = _shape_targets(marks_canvas, params)
    anchors = _extra_points(marks_canvas)
    points = np.vstack([targets, anchors])
    disp = np.vstack([marks_canvas - targets, np.zeros_like(anchors)])
    morph = rbf_field(points, disp, (h, w), sigma=0.2 * face_width)
    inverse = cv2.invertAffineTransform(affine)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = gx + morph[..., 0], gy + morph[..., 1]
    map_x = (inverse[0, 0] * cx + inverse[0, 1] * cy + inverse[0, 2]).astype(np.float32)
    map_y = (inverse[1, 0] * cx + inverse[1, 1] * cy + inverse[1, 2]).astype(np.float32)
    image = cv2.remap(portrait.image, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101)
    image = _recolour(image, targets, params).astype(np.float32)

    eye_mask, eye_box = _eye_mask(targets, (h, w))
    closed = _closed_eyes(image, targets, eye_mask)
    fields = _au_fields(targets, (h, w), face_width)
    return Identity(
        key, image, closed, eye_mask, eye_box, targets, fields, dict(params, portrait=portrait.name)
    )


def _face_mask(marks: np.ndarray, shape: tuple[int, int], blur: float) -> np.ndarray:
    h, w = shape
    hull_pts = np.vstack([marks[facs.JAW], marks[26:16:-1] - np.array([0, 0.12 * h])])
    mask = np.zeros((h, w), np.float32)
    cv2.fillConvexPoly(mask, cv2.convexHull(hull_pts.astype(np.int32)), 1.0)
    k = int(blur) * 2 + 1
    return cv2.GaussianBlur(mask, (k, k), blur)


def _recolour(image: np.ndarray, marks: np.ndarray, p: dict) -> np.ndarray:
    """Skin tone in Lab on the face, background hue shift, gamma and a light gradient."""
    h, w = image.shape[:2]
    face = _face_mask(marks, (h, w), blur=6.0)[..., None]
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB).astype(np.float32)
    lab[..., 0] += face[..., 0] * p["lightness"]
    lab[..., 1] += face[..., 0] * p["skin_a"]
    lab[..., 2] += face[..., 0] * p["skin_b"]
    skin = cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR)
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + int(p["background_hue"])) % 180).astype(np.uint8)
    background = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR).astype(np.float32)
    wide_face = _face_mask(marks, (h, w), blur=14.0)[..., None]
    wide_face = np.clip(wide_face * 1.6, 0, 1)
    out = skin.astype(np.float32) * wide_face + background * (1 - wide_face)
    out = 255.0 * (out / 255.0) ** p["gamma"]
    angle = np.deg2rad(p["light_angle_deg"])
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = ((gx - w / 2) * np.cos(angle) + (gy - h / 2) * np.sin(angle)) / max(h, w)
    out *= (1.0 + p["light_gradient"] * ramp)[..., None]
    return np.clip(out, 0, 255)


def _eye_mask(marks: np.ndarray, shape: tuple[int, int]):
    h, w = shape
    mask = np.zeros((h, w), np.float32)
    for eye in (facs.EYE_IMG_LEFT, facs.EYE_IMG_RIGHT):
        pts = marks[eye]
        center = pts.mean(0)
        grown = center + (pts - center) * np.array([1.25, 1.9])
        cv2.fillConvexPoly(mask, cv2.convexHull(grown.astype(np.int32)), 1.0)
    mask = cv2.GaussianBlur(mask, (7, 7), 1.6)
    ys, xs = np.nonzero(mask > 1e-3)
    box = (int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1)
    return mask[..., None], box


def _closed_eyes(image: np.ndarray, marks: np.ndarray, eye_mask: np.ndarray) -> np.ndarray:
    """The face with shut eyes: lid skin from just above each eye, plus a lash line."""
    closed = image.copy()
    h, w = image.shape[:2]
    for eye in (facs.EYE_IMG_LEFT, facs.EYE_IMG_RIGHT):
        pts = marks[eye]
        eye_h = max(3.0, float(pts[:, 1].max() - pts[:, 1].min()))
        lift = int(round(eye_h * 2.0))
        x0, x1 = int(pts[:, 0].min()) - 6, int(pts[:, 0].max()) + 7
        y0, y1 = int(pts[:, 1].min()) - 6, int(pts[:, 1].max()) + 7
        x0, y0 = max(0, x0), max(lift, y0)
        x1, y1 = min(w, x1), min(h, y1)
        lid = image[y0 - lift : y1 - lift, x0:x1]
        # lids are a shade darker than the brow skin they are borrowed from
        closed[y0:y1, x0:x1] = lid * 0.93
        lower_mid = (pts[4] + pts[5]) / 2
        lash = np.stack([pts[0], lower_mid - np.array([0.0, 0.5]), pts[3]])
        cv2.polylines(
            closed,
            [np.round(lash * 4).astype(np.int32)],
            False,
            (40.0, 35.0, 35.0),
            thickness=4,
            lineType=cv2.LINE_AA,
            shift=2,
        )
    closed = cv2.GaussianBlur(closed, (3, 3), 0.7)
    return image * (1 - eye_mask) + closed * eye_mask


def _au_fields(marks: np.ndarray, shape: tuple[int, int], face_width: float) -> dict:
    """Backward displacement fields for every AU (and the unilateral variants used)."""
    scale = np.linalg.norm(marks[16] - marks[0]) / facs.REFERENCE_FACE_WIDTH
    anchors = _extra_points(marks)
    keys: list = list(facs.AU_LIST)
    keys += [(au, side) for au in (10, 12, 14, 2) for side in ("L", "R")]
    columns = []
    for key in keys:
        au, side = (key, "") if isinstance(key, int) else key
        columns.append(-facs.template_array(au, side) * scale)
    disp = np.concatenate(columns, 1)
    disp = np.vstack([disp, np.zeros((len(anchors), disp.shape[1]), np.float32)])
    points = np.vstack([marks, anchors])
    h, w = shape
    lo = np.floor(points.min(0) - 0.25 * face_width).astype(int)
    hi = np.ceil(points.max(0) + 0.25 * face_width).astype(int)
    region = (max(0, lo[1]), min(h, hi[1]), max(0, lo[0]), min(w, hi[0]))
    dense = rbf_field(points, disp, shape, sigma=0.085 * face_width, region=region)
    return {key: np.ascontiguousarray(dense[..., 2 * i : 2 * i + 2]) for i, key in enumerate(keys)}
