"""The synthetic corpus: determinism, real layouts and workbooks, statistics, manifest."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from builders import CASME2_HEADER, SAMM_HEADER, SAMM_LV_HEADER, fake_corpus_record

from melib.data import synth

SEED = 7


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return synth.generate("tiny", tmp_path_factory.mktemp("tiny_a"), seed=SEED, progress=False)


def manifest(root: Path, key: str) -> dict:
    return json.loads((root / key / "synth_manifest.json").read_text())


# ----------------------------------------------------------------------- determinism


def test_whole_tiny_preset_is_byte_identical_across_runs(tiny, tmp_path):
    again = synth.generate("tiny", tmp_path / "tiny_b", seed=SEED, progress=False)
    first, second = tree_hashes(tiny), tree_hashes(again)
    assert len(first) > 1000
    assert first == second


def test_cli_subset_writes_the_same_files_as_the_whole_preset(tiny, tmp_path):
    from melib.cli import main

    out = tmp_path / "subset"
    assert main(["synth", "tiny", "--out", str(out), "--seed", str(SEED), "--datasets", "smic_hs"]) == 0
    assert tree_hashes(out / "smic_hs") == tree_hashes(tiny / "smic_hs")
    assert not (out / "casme_sq").exists()


def test_another_seed_changes_the_corpus():
    a = synth.plan_corpus("tiny", 1, ["casme_sq"])["casme_sq"]
    b = synth.plan_corpus("tiny", 2, ["casme_sq"])["casme_sq"]
    assert [(e.onset, e.offset) for p in a for e in p.events] != [
        (e.onset, e.offset) for p in b for e in p.events
    ]


# ----------------------------------------------------------------------- layouts

FRAME_PATTERNS = {
    "casme_sq": r"rawpic/s\d\d/\d\d_\d{4}[a-z]+/img\d{3,}\.jpg",
    "samm_lv": r"SAMM_longvideos/(\d{3}_\d)/\1_\d{4}\.jpg",
    "smic_e_long": r"SMIC-E_raw image/HS_long/SMIC-HS-E/s\d+/s\d+_(ne|po|sur)_\d\d/image\d{6}\.jpg",
    "casme2": r"CASME2_RAW_selected/sub\d\d/EP\d\d_\d\d[a-z]?/img\d+\.jpg",
    "samm": r"SAMM/(\d{3})/\1_\d_\d+/\1_\d{5}\.jpg",
    "smic_hs": r"SMIC/HS/s\d+/micro/(negative|positive|surprise)/s\d+_(ne|po|sur)_\d\d/image\d+\.bmp",
}


@pytest.mark.parametrize("key", synth.DATASET_KEYS)
def test_frames_follow_the_real_layout(tiny, key):
    frames = [p for p in (tiny / key).rglob("*") if p.suffix in (".jpg", ".bmp")]
    assert frames
    for path in frames:
        rel = path.relative_to(tiny / key).as_posix()
        assert re.fullmatch(FRAME_PATTERNS[key], rel), rel
    for video in manifest(tiny, key)["videos"]:
        folder = tiny / key / video["folder"]
        assert len(list(folder.iterdir())) == video["n_frames"]
        assert (folder / video["first_file"]).is_file()
        assert (folder / video["last_file"]).is_file()


def test_frames_look_like_the_identity(tiny):
    import cv2

    video = manifest(tiny, "casme_sq")["videos"][0]
    img = cv2.imread(str(tiny / "casme_sq" / video["folder"] / video["first_file"]))
    assert img.shape == (*synth.CANVAS, 3)
    x0, y0, x1, y1 = video["face_box"]
    assert 100 <= x1 - x0 <= 150
    assert 20 < img[y0:y1, x0:x1].mean() < 235


def rows(path: Path, sheet=0):
    wb = openpyxl.load_workbook(path)
    ws = wb.worksheets[sheet] if isinstance(sheet, int) else wb[sheet]
    return [list(r) for r in ws.iter_rows(values_only=True)]


def test_casme_sq_workbook_has_three_headerless_sheets_that_join(tiny):
    path = tiny / "casme_sq" / "CAS(ME)^2code_final.xlsx"
    assert openpyxl.load_workbook(path).sheetnames == ["CASFEcode_final", "naming rule1", "naming rule2"]
    code, rule1, rule2 = rows(path, 0), rows(path, 1), rows(path, 2)
    assert all(len(r) == 9 and isinstance(r[0], int) for r in code)  # no header row
    assert all(r[7] in ("macro-expression", "micro-expression") for r in code)
    assert all(r[6] in ("negative", "positive", "surprise", "others") for r in code)
    codes = {name: c for c, name in rule2}
    assert all(isinstance(c, str) and len(c) == 4 for c in codes.values())
    folder_of = {num: folder for _, folder, num in rule1}
    participant_of = {num: p for p, _, num in rule1}
    for subject, name, *_ in code:
        code4 = codes[name.rsplit("_", 1)[0]]
        subject_dir = tiny / "casme_sq" / "rawpic" / folder_of[subject]
        matches = [
            d for d in subject_dir.iterdir() if d.name.startswith(f"{participant_of[subject]}_{code4}")
        ]
        assert len(matches) == 1


def test_samm_lv_workbook_has_legend_then_header(tiny):
    data = rows(tiny / "samm_lv" / "SAMM_LongVideos_V2_Release.xlsx", "FACS_Movement_Only")
    assert data[9] == SAMM_LV_HEADER
    assert all("Subject" not in r for r in data[:9])
    body = data[10:]
    assert body and all(r[7] in ("Macro", "Micro - 1/2") for r in body)
    assert all(isinstance(r[0], str) and re.fullmatch(r"\d{3}", r[0]) for r in body)
    assert all(str(r[6]).startswith("=SUM(F") for r in body)


def test_smic_e_long_workbook_has_samples_then_text(tiny):
    data = rows(tiny / "smic_e_long" / "SMIC-E_raw image" / "HS_long" / "SMIC-HS-E_annotation.xlsx")
    assert data[0] == ["Subject", "Filename", "OnsetF", "OffsetF", "Emotion", "FirstF"]
    n = sum(len(v["events"]) for v in manifest(tiny, "smic_e_long")["videos"])
    samples = data[1 : 1 + n]
    assert all(isinstance(r[2], int) and r[2] >= r[5] for r in samples)
    assert any(isinstance(r[0], str) for r in data[1 + n :])  # trailing text rows


def test_casme2_and_samm_headers(tiny):
    casme2 = rows(tiny / "casme2" / "CASME2-coding-20140508.xlsx")
    header = casme2[0]
    for col in set(CASME2_HEADER) - {"Unnamed"}:
        assert col in header
    samm = rows(tiny / "samm" / "SAMM_Micro_FACS_Codes_v2.xlsx")
    at = next(i for i, r in enumerate(samm) if "Filename" in r)
    assert at > 5
    for col in SAMM_HEADER:
        assert col in samm[at]


def test_workbooks_have_fixed_timestamps(tiny):
    wb = openpyxl.load_workbook(tiny / "casme2" / "CASME2-coding-20140508.xlsx")
    assert wb.properties.modified == synth.FIXED_TIME


# ----------------------------------------------------------------------- manifest


def _by_header(data, header_row):
    header = data[header_row]
    return [dict(zip(header, r)) for r in data[header_row + 1 :] if r[1] is not None]


def test_manifest_matches_workbooks(tiny):
    code = rows(tiny / "casme_sq" / "CAS(ME)^2code_final.xlsx")
    events = [e for v in manifest(tiny, "casme_sq")["videos"] for e in v["events"]]
    assert [r[1] for r in code] == [e["name"] for e in events]
    for r, e in zip(code, events):
        assert (r[2], r[3], r[4]) == (e["workbook"]["onset"], e["workbook"]["apex"], e["workbook"]["offset"])
        assert r[2] == e["index"]["onset"] + 1 == e["file"]["onset"]
        expected_off = 0 if "offset_zero" in e["quirks"] else e["index"]["offset"] + 1
        assert r[4] == expected_off
        assert r[7] == f"{e['type']}-expression"

    lv = _by_header(rows(tiny / "samm_lv" / "SAMM_LongVideos_V2_Release.xlsx"), 9)
    events = [e for v in manifest(tiny, "samm_lv")["videos"] for e in v["events"]]
    assert len(lv) == len(events)
    for r, e in zip(lv, events):
        assert int(r["Onset"]) == e["file"]["onset"] == round(r["Onset"])
        assert int(r["Offset"]) == e["file"]["offset"]
        assert r["Apex"] == (-1 if "apex_minus_one" in e["quirks"] else e["file"]["apex"])

    c2 = _by_header(rows(tiny / "casme2" / "CASME2-coding-20140508.xlsx"), 0)
    videos = manifest(tiny, "casme2")["videos"]
    for r, v in zip(c2, videos):
        e = v["events"][0]
        assert r["OnsetFrame"] == v["first_frame_number"] + e["index"]["onset"]
        assert r["OffsetFrame"] == v["first_frame_number"] + e["index"]["offset"]
        if "apex_slash" in e["quirks"]:
            assert r["ApexFrame"] == "/"
            assert e["file"]["apex"] == (r["OnsetFrame"] + r["OffsetFrame"]) // 2
        else:
            assert r["ApexFrame"] == e["file"]["apex"]

    for v in manifest(tiny, "smic_hs")["videos"]:
        assert v["folder"].split("/")[-2] == v["events"][0]["emotion"]


def test_quirks_are_present_and_recoverable():
    corpus = synth.plan_corpus("book", 0, ["casme_sq", "samm_lv", "casme2", "samm"])
    quirks = {q for plans in corpus.values() for p in plans for e in p.events for q in e.quirks}
    assert {"offset_zero", "apex_zero", "non_integer", "apex_minus_one", "apex_slash", "onset_zero"} <= quirks
    for plans in corpus.values():
        for p in plans:
            for e in p.events:
                if {"apex_zero", "apex_slash", "apex_minus_one"} & set(e.quirks):
                    first = p.first_number
                    assert e.apex + first == (e.onset + first + e.offset + first) // 2


# ----------------------------------------------------------------------- statistics


def test_event_statistics_follow_the_real_data():
    full = synth.plan_corpus("full", 0, ["casme_sq", "samm_lv"])
    cas = [e for p in full["casme_sq"] for e in p.events]
    lv = [e for p in full["samm_lv"] for e in p.events]
    share = lambda evs: np.mean([e.type == "micro" for e in evs])  # noqa: E731
    assert 0.11 < share(cas) < 0.21
    assert 0.25 < share(lv) < 0.39
    dur = lambda evs, t: np.mean([e.offset - e.onset for e in evs if e.type == t])  # noqa: E731
    assert 11 < dur(cas, "micro") < 14.5
    assert 30 < dur(cas, "macro") < 41
    assert 300 < len(cas) < 420 and 85 <= len(full["casme_sq"]) <= 110  # real: 357 in 98
    per_video = [len(p.events) for p in full["casme_sq"]]
    assert np.mean(per_video) > 2.5
    assert all(e.offset - e.onset <= 15 for e in cas if e.type == "micro")


def test_micro_is_subtle_and_macro_is_several_pixels(tiny):
    events = [
        e for key in ("casme_sq", "samm_lv") for v in manifest(tiny, key)["videos"] for e in v["events"]
    ]
    micro = [e["peak_displacement_px"] for e in events if e["type"] == "micro"]
    macro = [e["peak_displacement_px"] for e in events if e["type"] == "macro"]
    assert micro and macro
    assert max(micro) <= 1.7
    assert np.median(macro) >= 2.0


def test_distractors_are_recorded(tiny):
    video = manifest(tiny, "casme_sq")["videos"][0]
    d = video["distractors"]
    assert len(d["blinks"]) >= 1  # ~17 blinks a minute
    assert d["noise_sigma"] > 0 and d["jpeg_quality"] == synth.JPEG_QUALITY
    assert 0 < d["drift_max_px"] < 6


# ----------------------------------------------------------------------- faces, cache


def test_bad_faces_folder_names_the_file(tmp_path):
    import cv2

    from melib.data.synth_faces import load_user_portraits

    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_user_portraits(tmp_path / "missing")
    blank = tmp_path / "faces"
    blank.mkdir()
    cv2.imwrite(str(blank / "wall.png"), np.full((200, 200, 3), 128, np.uint8))
    with pytest.raises(ValueError, match=r"no face in .*wall\.png"):
        load_user_portraits(blank)
    (blank / "wall.png").unlink()
    from skimage import data

    cv2.imwrite(str(blank / "me.png"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    assert [p.name for p in load_user_portraits(blank)] == ["me", "me-mirrored"]
    (blank / "me.png").unlink()
    (blank / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=r"broken\.jpg could not be decoded"):
        load_user_portraits(blank)


def test_ensure_corpus_generates_once(tmp_path, monkeypatch):
    monkeypatch.setenv("MELIB_CACHE", str(tmp_path))
    calls = []

    def fake_generate(preset, out, seed=0, **kwargs):
        calls.append(preset)
        Path(out).mkdir(parents=True, exist_ok=True)
        return fake_corpus_record(out)

    monkeypatch.setattr(synth, "generate", fake_generate)
    # The fake corpus has no dataset folders; the integrity check of a cached corpus is
    # tested in test_reliability_probe.py.
    monkeypatch.setattr(synth, "_corpus_damage", lambda root: None)
    first = synth.ensure_corpus("tiny", 3, progress=False)
    second = synth.ensure_corpus("tiny", 3, progress=False)
    assert first == second == tmp_path / "synth" / "tiny-seed3"
    assert calls == ["tiny"]
    assert not [p for p in (tmp_path / "synth").iterdir() if p.name.endswith(".tmp")]


# ----------------------------------------------------------------------- validity


def test_naive_detector_finds_macro_misses_micro_and_is_fooled(tmp_path, monkeypatch):
    # one book-length CAS(ME)² video (40 s, 8 events on average) is enough to see the regime
    monkeypatch.setitem(synth.PRESETS, "validity", dict(synth.PRESETS["tiny"], casme_sq=(1, 1, 1200, 8)))
    root = synth.generate("validity", tmp_path, seed=1, datasets=["casme_sq"], progress=False)
    table = synth.naive_flow_detector_f1(root, datasets=["casme_sq"], progress=False)
    assert table[["precision", "recall", "f1", "chance_f1"]].stack().between(0, 1).all()
    row = table.set_index("type")
    assert row.loc["macro", "n_true"] >= 5
    assert row.loc["macro", "f1"] > 2 * row.loc["macro", "chance_f1"] + 0.1
    assert row.loc["micro", "f1"] < row.loc["macro", "f1"]
    assert row.loc["macro", "fp_on_distractors"] >= 0.5


def test_corpus_figures_draw(tiny):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from melib.visualization import corpus as C

    table = pd.DataFrame(
        {"dataset": ["casme_sq"] * 2, "type": ["micro", "macro"], "f1": [0.0, 0.4], "chance_f1": [0.01, 0.08]}
    )
    for fig in (
        C.plot_identities(tiny, per_dataset=1),
        C.plot_video_timeline(tiny, "casme_sq", 0, with_flow=False),
        C.plot_au_fields(aus=(12, 45), root=tiny),
        C.plot_micro_vs_macro(tiny),
        C.plot_detector_f1(table),
    ):
        assert fig.axes
        plt.close(fig)
