"""Loaders: the real workbooks (when ../shared is present) and hand-made quirky layouts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from builders import CASME2_HEADER, SAMM_HEADER, SAMM_LEGEND, SAMM_LV_HEADER

from melib.data import datasets as D

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "reference"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/reference is absent")


# --------------------------------------------------------------------------- helpers


def write_frames(folder: Path, numbers, fmt: str, size=(6, 8)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    image = np.full((*size, 3), 128, np.uint8)
    for n in numbers:
        cv2.imwrite(str(folder / (fmt % n)), image)


def write_sheets(path: Path, sheets: dict[str, list[list]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, rows in sheets.items():
            width = max(len(r) for r in rows)
            rows = [list(r) + [None] * (width - len(r)) for r in rows]
            pd.DataFrame(rows).to_excel(writer, sheet_name=name, header=False, index=False)


def make_casme_sq(root: Path, video_len=30) -> Path:
    write_sheets(
        root / "CAS(ME)^2code_final.xlsx",
        {
            "CASFEcode_final": [
                [1, "anger1_1", 5, 8, 12, "4+10", "negative", "macro-expression", "anger"],
                [1, "anger1_2", 20, 0, 26, 4, "negative", "macro-expression", "anger"],
                [2, "happy1_1", 3, 6, 0, "6+12", "positive", "micro-expression", "happy"],
            ],
            "naming rule1": [[15, "s15", 1], [16, "s16", 2]],
            "naming rule2": [[401, "anger1"], [502, "happy1"]],
        },
    )
    write_frames(root / "rawpic/s15/15_0401eatingworms", range(1, video_len + 1), "img%03d.jpg")
    write_frames(root / "rawpic/s16/16_0502funnyerrors", range(1, 13), "img%03d.jpg")
    return root


def make_samm_lv(root: Path) -> Path:
    rows = SAMM_LEGEND + [
        SAMM_LV_HEADER,
        ["006", "006_1_1", 1, 10.4, 20.6, 40.6, 30.2, "Macro", "4+7", None],
        ["006", "006_1_2", 1, 50, -1, 60, 11, "Micro - 1/2", "4", "blink"],
        ["006", "006_1_3", 1, 0, 30, 70, 70, "Macro", "12", None],
        ["007", "007_2_1", 2, 3, 5, 9, 7, "Micro - 1/2", "1+2", None],
    ]
    write_sheets(root / "SAMM_LongVideos_V2_Release.xlsx", {"FACS_Movement_Only": rows})
    write_frames(root / "SAMM_longvideos/006_1", range(1, 81), "006_1_%04d.jpg")
    write_frames(root / "SAMM_longvideos/007_2", range(1, 13), "007_2_%04d.jpg")
    return root


def make_smic_e(root: Path) -> Path:
    base = root / "SMIC-E_raw image" / "HS_long"
    write_sheets(
        base / "SMIC-HS-E_annotation.xlsx",
        {
            "Sheet1": [
                ["Subject", "Filename", "OnsetF", "OffsetF", "Emotion", "FirstF"],
                [1, "s01_ne_01", 1010, 1020, "negative", 1000],
                [None, None, None, None, None, None],
                [2, "s02_po_01", 505, 512, "positive", 500],
                [None, None, None, None, None, None],
                ["Note: the following clips were excluded", None, None, None, None, None],
                ["see readme", None, None, None, None, None],
            ]
        },
    )
    write_frames(base / "SMIC-HS-E" / "s01" / "s01_ne_01", range(1000, 1030), "image%06d.bmp")
    write_frames(base / "SMIC-HS-E" / "s02" / "s02_po_01", range(500, 520), "image%06d.bmp")
    return root


def make_casme2(root: Path) -> Path:
    write_sheets(
        root / "CASME2-coding-20140508.xlsx",
        {
            "Sheet1": [
                CASME2_HEADER,
                [1, "EP02_01f", None, 46, 59, 86, "12", "happiness"],
                [1, "EP03_02", None, 100, "/", 120, "4+L10", "disgust"],
                [2, "EP02_01f", None, 10, 12, 20, "14", "repression"],
                [2, "EP05_04", None, 1, 3, 6, "1+2", "fear"],
            ]
        },
    )
    write_frames(root / "CASME2_RAW_selected/sub01/EP02_01f", range(46, 87), "img%d.jpg")
    write_frames(root / "CASME2_RAW_selected/sub01/EP03_02", range(100, 121), "img%d.jpg")
    write_frames(root / "CASME2_RAW_selected/sub02/EP02_01f", range(10, 21), "img%d.jpg")
    write_frames(root / "CASME2_RAW_selected/sub02/EP05_04", range(1, 7), "img%d.jpg")
    return root


def make_samm(root: Path) -> Path:
    write_sheets(
        root / "SAMM_Micro_FACS_Codes_v2.xlsx",
        {
            "Sheet1": SAMM_LEGEND[:5]
            + [SAMM_HEADER]
            + [
                [6, "006_1_2", 1, 5562, 5588, 5632, 71, "Micro - 1/2", "4+7", None, "Anger", 1],
                [7, "007_3_1", 3, 200, -1, 230, 31, "Micro - 1/2", "12", None, "Happiness", 2],
            ]
        },
    )
    write_frames(root / "SAMM/006/006_1_2", range(5562, 5633), "006_%05d.jpg")
    write_frames(root / "SAMM/007/007_3_1", range(200, 231), "007_%05d.jpg")
    return root


def make_smic_hs(root: Path) -> Path:
    base = root / "SMIC" / "HS"
    write_frames(base / "s1/micro/negative/s1_ne_01", range(1, 12), "image%06d.bmp")
    write_frames(base / "s1/micro/positive/s1_po_02", range(30, 45), "image%06d.bmp")
    write_frames(base / "s12/micro/surprise/s12_sur_01", range(7, 16), "image%06d.bmp")
    (base / "s1/non_micro").mkdir(parents=True)
    return root


MAKERS = {
    "casme_sq": make_casme_sq,
    "samm_lv": make_samm_lv,
    "smic_e_long": make_smic_e,
    "casme2": make_casme2,
    "samm": make_samm,
    "smic_hs": make_smic_hs,
}


# --------------------------------------------------------------------------- real workbooks


@needs_shared
def test_real_casme_sq_counts_and_durations():
    table = D.load_annotations("casme_sq", SHARED / "CASME_sq_code_final.xlsx")
    assert list(table.columns) == D.STANDARD_COLUMNS
    assert table["type"].value_counts().to_dict() == {"macro": 300, "micro": 57}
    assert table["subject"].nunique() == 22
    duration = (table["offset"] - table["onset"]).groupby(table["type"]).mean()
    assert round(duration["micro"], 2) == 12.58 and round(duration["macro"], 2) == 35.44
    log = " ".join(table.attrs["fix_log"])
    assert "44 rows had offset 0" in log and "1 rows had apex 0" in log
    first = table.iloc[0]  # anger1_1 of subject 1: s15, code 0401, frames 557..? 1-based
    assert (first["subject"], first["video"], first["onset"]) == ("s15", "15_0401", 556)


@needs_shared
def test_real_samm_lv_counts():
    kept = D.load_annotations("samm_lv", SHARED / "SAMM_LongVideos_V2_Release.xlsx", keep_onset_zero=True)
    assert kept["type"].value_counts().to_dict() == {"macro": 343, "micro": 159}
    dropped = D.load_annotations("samm_lv", SHARED / "SAMM_LongVideos_V2_Release.xlsx")
    assert dropped["type"].value_counts().to_dict() == {"macro": 333, "micro": 159}
    assert dropped["subject"].str.fullmatch(r"\d{3}").all()
    assert "dropped 10 rows with onset 0" in " ".join(dropped.attrs["fix_log"])
    # SOFTNet's k = int((N+1)/2) comes out the same whichever rounding is used.
    for mode in D.FRACTIONAL_MODES:
        t = D.load_annotations("samm_lv", SHARED / "SAMM_LongVideos_V2_Release.xlsx", fractional=mode)
        n = (t["offset"] - t["onset"]).groupby(t["type"]).mean()
        assert int((n["micro"] + 1) / 2) == 37 and int((n["macro"] + 1) / 2) == 174


@needs_shared
def test_packaged_megc2019_list_matches_reference():
    packaged = D.megc2019_samples()
    reference = (SHARED / "megc2019_composite_samples.txt").read_text().split()
    assert packaged["sample"].tolist() == reference


def test_megc2019_list_counts():
    s = D.megc2019_samples()
    assert len(s) == 442 and s["subject"].nunique() == 68
    per = s.groupby("dataset").agg(n=("sample", "size"), subjects=("subject", "nunique"))
    assert per.to_dict("index") == {
        "casme2": {"n": 145, "subjects": 24},
        "smic_hs": {"n": 164, "subjects": 16},
        "samm": {"n": 133, "subjects": 28},
    }


# --------------------------------------------------------------------------- hand-made layouts


def test_frame_sort_is_numeric(tmp_path):
    for name in ("img999.jpg", "img1000.jpg", "img001.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in D.list_frames(tmp_path)] == ["img001.jpg", "img999.jpg", "img1000.jpg"]


def test_to_frame_index():
    assert D.to_frame_index(1, 1) == 0
    assert D.to_frame_index(566.4, 1) == 565 and D.to_frame_index(566.6, 1) == 566
    assert D.to_frame_index(566.6, 1, "floor") == 565
    assert D.to_frame_index(1010, 1000) == 10
    with pytest.raises(ValueError):
        D.to_frame_index(3, 1, "ceil")


def test_casme_sq_layout(tmp_path):
    ds = D.load_dataset("casme_sq", make_casme_sq(tmp_path / "casme_sq"))
    a = ds.annotations
    assert ds.fps == 30 and list(a.columns) == D.STANDARD_COLUMNS
    assert a["video"].tolist() == ["15_0401eatingworms"] * 2 + ["16_0502funnyerrors"]
    assert a[["onset", "apex", "offset"]].values.tolist() == [[4, 7, 11], [19, 22, 25], [2, 5, 5]]
    assert a["type"].tolist() == ["macro", "macro", "micro"]
    assert a["subject"].tolist() == ["s15", "s15", "s16"]
    log = " ".join(ds.fix_log)
    assert "offset 0" in log and "apex 0" in log
    assert ds.videos.set_index("video")["n_frames"].to_dict() == {
        "15_0401eatingworms": 30,
        "16_0502funnyerrors": 12,
    }
    assert ds.read_frame("16_0502funnyerrors", 0).shape == (6, 8, 3)
    assert ds.read_frame("16_0502funnyerrors", 0, gray=True).shape == (6, 8)
    assert len(list(ds.iter_frames("15_0401eatingworms", 5, 9))) == 4
    assert ds.frame_paths("15_0401eatingworms")[0].name == "img001.jpg"


def test_load_from_data_root(tmp_path):
    make_casme_sq(tmp_path / "casme_sq")
    assert len(D.load_from_data_root("casme_sq", tmp_path).annotations) == 3


def test_samm_lv_quirks(tmp_path):
    root = make_samm_lv(tmp_path / "samm_lv")
    ds = D.load_dataset("samm_lv", root)
    a = ds.annotations
    assert a["video"].tolist() == ["006_1", "006_1", "007_2"]
    assert a[["onset", "apex", "offset"]].values.tolist() == [[9, 20, 40], [49, 54, 59], [2, 4, 8]]
    assert a["type"].tolist() == ["macro", "micro", "micro"] and ds.fps == 200
    floor = D.load_dataset("samm_lv", root, fractional="floor").annotations
    assert floor[["onset", "apex", "offset"]].values.tolist()[0] == [9, 19, 39]
    kept = D.load_dataset("samm_lv", root, keep_onset_zero=True).annotations
    assert len(kept) == 4 and kept.iloc[2]["onset"] == 0
    log = " ".join(ds.fix_log)
    assert "onset 0" in log and "non-integer" in log and "apex" in log


def test_smic_e_first_frame_and_trailing_text(tmp_path):
    ds = D.load_dataset("smic_e_long", make_smic_e(tmp_path / "smic_e_long"))
    a = ds.annotations
    assert a["video"].tolist() == ["s01_ne_01", "s02_po_01"]
    assert a[["onset", "apex", "offset"]].values.tolist() == [[10, 15, 20], [5, 8, 12]]
    assert set(a["type"]) == {"micro"} and a["subject"].tolist() == ["s01", "s02"]
    assert any("non-sample rows" in line for line in ds.fix_log)
    assert ds.fps == 100


def test_casme2_columns_by_name_and_slash_apex(tmp_path):
    ds = D.load_dataset("casme2", make_casme2(tmp_path / "casme2"))
    a = ds.annotations.set_index("sample")
    assert list(ds.annotations.columns) == D.STANDARD_COLUMNS + ["sample"]
    assert a.loc["sub01_EP02_01f", ["onset", "apex", "offset"]].tolist() == [0, 13, 40]
    assert a.loc["sub01_EP03_02", "apex"] == 10  # "/" -> middle
    assert a.loc["sub02_EP02_01f", "emotion"] == "repression"
    assert a.loc["sub01_EP03_02", "aus"] == "4+L10"
    assert (ds.annotations["video"] == ds.annotations["sample"]).all()


def test_samm_header_below_legend(tmp_path):
    ds = D.load_dataset("samm", make_samm(tmp_path / "samm"))
    a = ds.annotations.set_index("sample")
    assert a.loc["006_006_1_2", ["onset", "apex", "offset"]].tolist() == [0, 26, 70]
    assert a.loc["007_007_3_1", "apex"] == 15
    assert a.loc["006_006_1_2", "emotion"] == "anger" and a.loc["006_006_1_2", "subject"] == "006"


def test_smic_hs_labels_from_folders(tmp_path):
    ds = D.load_dataset("smic_hs", make_smic_hs(tmp_path / "smic_hs"))
    a = ds.annotations.set_index("sample")
    assert sorted(a.index) == ["s01_s01_ne_01", "s01_s01_po_02", "s12_s12_sur_01"]
    assert a.loc["s01_s01_po_02", ["onset", "apex", "offset"]].tolist() == [0, 7, 14]
    assert a.loc["s12_s12_sur_01", "emotion"] == "surprise"


def test_megc2019_composite_by_emotion_rule(tmp_path):
    for key in ("casme2", "samm", "smic_hs"):
        MAKERS[key](tmp_path / key)
    ds = D.load_dataset("megc2019", tmp_path, sample_list=False)
    a = ds.annotations
    # fear (CASME II) is dropped; SAMM anger -> negative, happiness -> positive
    assert len(a) == 3 + 2 + 3 and set(a["emotion"]) == set(D.MEGC2019_CLASSES)
    assert a.set_index("sample").loc["007_007_3_1", "emotion"] == "positive"
    assert ds.read_frame("s12_s12_sur_01", 0).shape == (6, 8, 3)
    # A partial copy: "auto" falls back on the emotion rule, True insists on all 442.
    auto = D.load_dataset("megc2019", tmp_path)
    assert auto.annotations.equals(a) and "official list was not applied" in auto.fix_log[-1]
    with pytest.raises(D.DatasetError, match="of the 442 listed samples are not in"):
        D.load_dataset("megc2019", tmp_path, sample_list=True)


# --------------------------------------------------------------------------- errors


def test_error_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        D.load_dataset("casme_sq", tmp_path / "nowhere")


def test_error_data_root_instead_of_dataset_root(tmp_path):
    make_casme_sq(tmp_path / "casme_sq")
    with pytest.raises(D.DatasetPathError, match=r"looks like the data_root.*casme_sq"):
        D.load_dataset("casme_sq", tmp_path)


def test_error_frames_folder_instead_of_root(tmp_path):
    root = make_casme_sq(tmp_path / "casme_sq")
    with pytest.raises(D.DatasetPathError, match="frames folder itself"):
        D.load_dataset("casme_sq", root / "rawpic")


def test_error_missing_workbook(tmp_path):
    root = make_samm_lv(tmp_path / "samm_lv")
    (root / "SAMM_LongVideos_V2_Release.xlsx").unlink()
    with pytest.raises(D.DatasetPathError, match="SAMM_LongVideos_V2_Release.xlsx"):
        D.load_dataset("samm_lv", root)


def test_error_missing_column(tmp_path):
    root = make_casme2(tmp_path / "casme2")
    write_sheets(
        root / "CASME2-coding-20140508.xlsx",
        {
            "Sheet1": [
                ["Subject", "Filename", "OnsetFrame", "OffsetFrame", "Action Units", "Estimated Emotion"],
                [1, "EP02_01f", 46, 86, "12", "happiness"],
            ]
        },
    )
    with pytest.raises(D.DatasetError, match="column 'ApexFrame' is missing"):
        D.load_dataset("casme2", root)


def test_error_missing_frames(tmp_path):
    root = make_casme_sq(tmp_path / "casme_sq")
    shutil.rmtree(root / "rawpic/s16/16_0502funnyerrors")
    with pytest.raises(D.DatasetPathError, match=r"no frame folder.*16_0502.*row 3"):
        D.load_dataset("casme_sq", root)
    lenient = D.load_dataset("casme_sq", root, require_frames=False)
    assert "16_0502" in lenient.annotations["video"].tolist()


def test_error_annotation_beyond_video_end(tmp_path):
    root = make_casme_sq(tmp_path / "casme_sq", video_len=20)
    with pytest.raises(D.DatasetError, match=r"row 2 \(video 15_0401eatingworms\).*20 frames"):
        D.load_dataset("casme_sq", root)


def test_error_corrupt_frame(tmp_path):
    root = make_casme_sq(tmp_path / "casme_sq")
    (root / "rawpic/s16/16_0502funnyerrors/img003.jpg").write_bytes(b"not a jpeg")
    ds = D.load_dataset("casme_sq", root)
    with pytest.raises(D.CorruptFrameError, match="img003.jpg.*cannot be decoded"):
        ds.read_frame("16_0502funnyerrors", 2)


def test_error_unknown_video(tmp_path):
    ds = D.load_dataset("casme_sq", make_casme_sq(tmp_path / "casme_sq"))
    with pytest.raises(D.DatasetError, match="not among"):
        ds.frame_paths("nope")


# --------------------------------------------------------------------------- CLI


def test_cli_summary_json(tmp_path, capsys):
    from melib.cli import main

    root = make_samm_lv(tmp_path / "samm_lv")
    assert main(["data", "summary", "samm_lv", "--root", str(root), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["per_type"] == {"macro": 1, "micro": 2} and s["frames_found"] == 92
    assert s["per_subject"] == {"006": 2, "007": 1} and s["videos_found"] == 2
    assert s["mean_duration_frames"]["micro"] == 8.0


def test_cli_summary_workbook_only_and_errors(tmp_path, capsys):
    from melib.cli import main

    root = make_casme_sq(tmp_path / "casme_sq")
    shutil.rmtree(root / "rawpic")
    assert main(["data", "summary", "casme_sq", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "macro 2, micro 1" in out and "0 frames found" in out
    assert main(["data", "summary", "casme_sq", "--root", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_megc2019_official_list_applied_when_complete(tmp_path):
    listed = D.megc2019_samples()
    code = {"ne": "negative", "po": "positive", "sur": "surprise"}
    casme2 = [
        ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion"]
    ]
    samm = [
        [
            "Subject",
            "Filename",
            "Onset Frame",
            "Apex Frame",
            "Offset Frame",
            "Action Units",
            "Estimated Emotion",
        ]
    ]
    for i, r in enumerate(listed.itertuples()):
        subject, clip = r.sample.split("_", 1)
        if r.dataset == "casme2":
            casme2.append([int(subject[3:]), clip, 1, 2, 3, "4", ("disgust", "happiness")[i % 2]])
            write_frames(tmp_path / "casme2/CASME2_RAW_selected" / subject / clip, [1, 2, 3], "img%d.jpg")
        elif r.dataset == "samm":
            samm.append([subject, clip, 1, 2, 3, "12", "contempt"])
            write_frames(tmp_path / "samm/SAMM" / subject / clip, [1, 2, 3], f"{subject}_%05d.jpg")
        else:
            short = f"s{int(subject[1:])}"
            folder = clip.replace(subject, short, 1)  # s01_ne_01 lives in s1/.../s1_ne_01
            emotion = code[folder.split("_")[1]]
            write_frames(
                tmp_path / "smic_hs/SMIC/HS" / short / "micro" / emotion / folder, [1, 2], "image%06d.bmp"
            )
    # Clips off the list (a fear clip and an extra disgust clip) must not come through.
    casme2 += [[1, "EP99_01", 1, 2, 3, "4", "disgust"], [1, "EP98_01", 1, 2, 3, "4", "fear"]]
    for clip in ("EP99_01", "EP98_01"):
        write_frames(tmp_path / "casme2/CASME2_RAW_selected/sub01" / clip, [1, 2, 3], "img%d.jpg")
    write_sheets(tmp_path / "casme2/CASME2-coding-20140508.xlsx", {"Sheet1": casme2})
    write_sheets(tmp_path / "samm/SAMM_Micro_FACS_Codes_v2.xlsx", {"Sheet1": SAMM_LEGEND + samm})
    ds = D.load_from_data_root("megc2019", tmp_path)
    a = ds.annotations
    assert a["sample"].tolist() == listed["sample"].tolist()
    assert a["subject"].nunique() == 68 and a["dataset"].value_counts().to_dict() == {
        "smic_hs": 164,
        "casme2": 145,
        "samm": 133,
    }
    assert set(a["emotion"]) == {"negative", "positive", "surprise"}
    assert "kept the 442 samples of the official list" in ds.fix_log[-1]


def test_error_damaged_workbook(tmp_path):
    root = make_casme_sq(tmp_path / "casme_sq")
    (root / "CAS(ME)^2code_final.xlsx").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(D.DatasetError, match=r"code_final.xlsx: cannot be read as an .xlsx"):
        D.load_dataset("casme_sq", root)


def test_error_workbook_in_the_wrong_place(tmp_path):
    root = tmp_path / "smic_e_long"
    root.mkdir()
    (root / "SMIC-HS-E_annotation.xlsx").write_bytes(b"")
    with pytest.raises(D.DatasetPathError, match=r"HS_long/SMIC-HS-E_annotation.xlsx"):
        D.load_dataset("smic_e_long", root)


def test_casme_sq_tolerates_a_header_row(tmp_path):
    root = make_casme_sq(tmp_path / "casme_sq")
    book = pd.ExcelFile(root / "CAS(ME)^2code_final.xlsx")
    sheets = {n: pd.read_excel(book, n, header=None).values.tolist() for n in book.sheet_names}
    sheets["CASFEcode_final"].insert(
        0, ["Subject", "Name", "Onset", "Apex", "Offset", "AUs", "Emotion", "Type", "Self-report"]
    )
    sheets["naming rule2"].insert(0, ["Code", "Name"])
    write_sheets(root / "CAS(ME)^2code_final.xlsx", sheets)
    ds = D.load_dataset("casme_sq", root)
    assert len(ds.annotations) == 3 and "skipped 1 rows" in " ".join(ds.fix_log)
