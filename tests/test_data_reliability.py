"""Reliability of the data layer: no data loss, no debris, concurrent runs, damaged trees."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from builders import fake_corpus_record
from conftest import PROJECT_ROOT

from melib import runtime
from melib.data import synth


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------- synth: no data loss


def test_synth_refuses_to_replace_a_folder_it_did_not_write(tmp_path, capsys):
    from melib.cli import main

    real = tmp_path / "casme2" / "CASME2_RAW_selected" / "sub01" / "EP02_01f"
    real.mkdir(parents=True)
    (real / "img46.jpg").write_bytes(b"licensed frame")
    (tmp_path / "casme2" / "CASME2-coding-20140508.xlsx").write_bytes(b"licensed workbook")
    before = _tree(tmp_path)
    assert main(["synth", "tiny", "--out", str(tmp_path), "--datasets", "casme2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(tmp_path / "casme2") in err and "synth_manifest.json" in err
    assert _tree(tmp_path) == before  # nothing deleted, nothing added


@pytest.mark.parametrize(
    "manifest",
    ['{"dataset": "casme2"}', "not json", '{"dataset": "samm", "generator": "melib.data.synth v4"}'],
)
def test_synth_refuses_a_folder_whose_manifest_is_not_melibs(tmp_path, manifest):
    folder = tmp_path / "casme2"
    folder.mkdir()
    (folder / "synth_manifest.json").write_text(manifest)
    (folder / "keep.txt").write_text("user data")
    with pytest.raises(ValueError, match="not a melib synthetic corpus"):
        synth.generate("tiny", tmp_path, datasets=["casme2"], progress=False)
    assert (folder / "keep.txt").read_text() == "user data"


def test_synth_refuses_a_file_or_link_in_place_of_a_dataset_folder(tmp_path):
    (tmp_path / "samm").write_text("a file")
    with pytest.raises(ValueError, match="not a folder that melib synth wrote"):
        synth.generate("tiny", tmp_path, datasets=["samm"], progress=False)
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "casme2").symlink_to(target)
    with pytest.raises(ValueError, match="not a folder that melib synth wrote"):
        synth.generate("tiny", tmp_path, datasets=["casme2"], progress=False)
    assert (tmp_path / "samm").read_text() == "a file" and target.is_dir()


def test_synth_out_that_is_a_file_is_one_clear_error(tmp_path):
    (tmp_path / "out").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        synth.generate("tiny", tmp_path / "out", datasets=["casme2"], progress=False)
    with pytest.raises(ValueError, match=r"--out .*out/sub: cannot write there"):
        synth.generate("tiny", tmp_path / "out" / "sub", datasets=["casme2"], progress=False)


def test_synth_replaces_its_own_corpus_and_cleans_a_killed_runs_debris(tmp_path):
    first = _tree(synth.generate("tiny", tmp_path / "a", datasets=["casme2"], progress=False))
    out = tmp_path / "b"
    synth.generate("tiny", out, datasets=["casme2"], progress=False)
    (out / "casme2" / "extra.txt").write_text("stale")  # an older synthetic copy
    (out / ".casme2.partial").mkdir()  # left by a SIGKILL
    (out / ".samm.old").mkdir()
    (out / "empty_smic_hs").mkdir()
    (out / "smic_hs").mkdir()  # an empty folder loses nothing when replaced
    synth.generate("tiny", out, datasets=["casme2"], progress=False)
    assert _tree(out / "casme2") == {
        k[len("casme2/") :]: v for k, v in first.items() if k.startswith("casme2/")
    }
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert (out / "empty_smic_hs").is_dir()


# ----------------------------------------------------------------------- synth: concurrency


def test_a_second_synth_waits_for_the_first_and_says_why(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    held, release = threading.Event(), threading.Event()

    def holder():
        with runtime.file_lock(out / synth.LOCK_NAME, remove=True):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(10)
    threading.Timer(1.0, release.set).start()
    start = time.monotonic()
    synth.generate("tiny", out, datasets=["casme2"], progress=False)
    thread.join()
    assert time.monotonic() - start >= 0.9
    assert "another run is writing into" in capsys.readouterr().err
    assert (out / "casme2" / "synth_manifest.json").is_file()
    assert not (out / synth.LOCK_NAME).exists()


def test_two_synth_processes_into_one_folder_both_succeed(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "melib", "synth", "tiny", "--out", str(out), "--datasets", "smic_hs"]
    runs = [
        subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(p.wait(120), p.stderr.read()) for p in runs]
    for p in runs:
        p.stdout.close()
        p.stderr.close()
    assert [rc for rc, _ in results] == [0, 0], results
    alone = synth.generate("tiny", tmp_path / "alone", datasets=["smic_hs"], progress=False)
    assert _tree(out / "smic_hs") == _tree(alone / "smic_hs")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


# ----------------------------------------------------------------------- cache leftovers


def test_remove_stale_temps_touches_only_melibs_own_names(tmp_path):
    target = tmp_path / "tiny-seed0"
    (tmp_path / ".tiny-seed0.ab_d1234.tmp").mkdir()  # atomic_dir's temporary folder
    (tmp_path / ".tiny-seed0.ab_d1234.tmp" / "x.jpg").write_bytes(b"x")
    (tmp_path / ".feat.k2j4h5g6.tmp.npz").write_bytes(b"x")  # atomic_path's temporary file
    keep = [
        ".tiny-seed0.notes.tmp",
        ".tiny-seed01.abcd1234.tmp",
        "tiny-seed0.abcd1234.tmp",
        ".tiny-seed0.lock",
        ".feat.k2j4h5g6.tmp.npy",
    ]
    for name in keep:
        (tmp_path / name).write_text("keep")
    removed = runtime.remove_stale_temps(target)
    assert [p.name for p in removed] == [".tiny-seed0.ab_d1234.tmp"]
    assert [p.name for p in runtime.remove_stale_temps(tmp_path / "feat.npz")] == [".feat.k2j4h5g6.tmp.npz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


def test_ensure_corpus_removes_a_killed_runs_temporary_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MELIB_CACHE", str(tmp_path))
    stale = tmp_path / "synth" / ".tiny-seed3.x1y2z3w4.tmp"
    (stale / "casme_sq").mkdir(parents=True)
    other = tmp_path / "synth" / ".tiny-seed4.x1y2z3w4.tmp"  # another corpus's: not ours to judge
    other.mkdir()

    def fake_generate(preset, out, seed=0, **kwargs):
        return fake_corpus_record(out)

    monkeypatch.setattr(synth, "generate", fake_generate)
    synth.ensure_corpus("tiny", 3, progress=False)
    assert not stale.exists() and other.is_dir()


# ----------------------------------------------------------------------- frames by number

from test_datasets import make_casme2, make_casme_sq, make_smic_e, write_frames  # noqa: E402

from melib.data import datasets as D  # noqa: E402

CASME_SQ_VIDEO = "rawpic/s15/15_0401eatingworms"


def test_a_gap_in_the_numbering_is_an_error_naming_the_folder_and_numbers(tmp_path):
    root = make_casme_sq(tmp_path / "casme_sq")
    for n in (10, 11, 12):
        (root / CASME_SQ_VIDEO / f"img{n:03d}.jpg").unlink()
    with pytest.raises(
        D.DatasetError,
        match=r"15_0401eatingworms: no file for frame numbers "
        r"10-12 \(3 of 1\.\.30 missing\).*Fix: restore",
    ):
        D.load_dataset("casme_sq", root)


def test_data_summary_reports_a_gap_and_the_video_cannot_be_read(tmp_path, capsys):
    from melib.cli import main

    root = make_casme_sq(tmp_path / "casme_sq")
    (root / CASME_SQ_VIDEO / "img005.jpg").unlink()
    ds = D.load_dataset("casme_sq", root, require_frames=False)
    assert len(ds.frame_problems) == 1 and "frame numbers 5 " in ds.frame_problems[0]
    # the frames after the gap are not shifted onto the wrong indices: reading refuses
    with pytest.raises(D.DatasetError, match="no file for frame numbers 5"):
        ds.read_frame("15_0401eatingworms", 10)
    assert ds.n_frames("15_0401eatingworms") == 30  # the video's length by its numbering
    assert len(ds.frame_paths("16_0502funnyerrors")) == 12  # the sound video still reads
    assert main(["data", "summary", "casme_sq", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "frame problems (1;" in out and "15_0401eatingworms: no file for frame numbers 5" in out
    assert main(["data", "summary", "casme_sq", "--root", str(root), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["frame_problems"]) == 1


def test_a_missing_first_frame_is_a_gap_not_a_shift(tmp_path):
    # CAS(ME)² numbers from 1: without img001 every annotation would land one frame late
    root = make_casme_sq(tmp_path / "casme_sq")
    (root / CASME_SQ_VIDEO / "img001.jpg").unlink()
    with pytest.raises(D.DatasetError, match=r"no file for frame numbers 1 \(1 of 1\.\.30"):
        D.load_dataset("casme_sq", root)


def test_smic_e_frames_before_first_f_are_reported(tmp_path):
    root = make_smic_e(tmp_path / "smic_e_long")
    folder = root / "SMIC-E_raw image/HS_long/SMIC-HS-E/s01/s01_ne_01"
    write_frames(folder, [990], "image%06d.bmp")
    early = r"image000990\.bmp is numbered 990, before the video's first frame number 1000"
    with pytest.raises(D.DatasetError, match=early):
        D.load_dataset("smic_e_long", root)


def test_casme2_gap_is_an_error(tmp_path):
    root = make_casme2(tmp_path / "casme2")
    (root / "CASME2_RAW_selected/sub01/EP02_01f/img50.jpg").unlink()
    with pytest.raises(D.DatasetError, match=r"EP02_01f: no file for frame numbers 50 "):
        D.load_dataset("casme2", root)


def test_two_different_files_with_one_number_are_an_error(tmp_path):
    root = make_casme_sq(tmp_path / "casme_sq")
    cv2 = pytest.importorskip("cv2")
    import numpy as np

    cv2.imwrite(str(root / CASME_SQ_VIDEO / "img0010.jpg"), np.zeros((6, 8, 3), np.uint8))
    with pytest.raises(
        D.DatasetError,
        match=r"frame number 10 is carried by 2 different files "
        r"\(img010\.jpg, img0010\.jpg\).*named like img010\.jpg",
    ):
        D.load_dataset("casme_sq", root)


def test_an_identical_duplicate_is_merged_with_a_warning_and_the_fix(tmp_path):
    root = make_casme_sq(tmp_path / "casme_sq")
    folder = root / CASME_SQ_VIDEO
    (folder / "img0010.jpg").write_bytes((folder / "img010.jpg").read_bytes())
    with pytest.warns(UserWarning, match=r"img0010\.jpg repeat\(s\) frame 10 .*Fix: delete img0010"):
        ds = D.load_dataset("casme_sq", root)
    paths = ds.frame_paths("15_0401eatingworms")
    assert len(paths) == ds.n_frames("15_0401eatingworms") == 30
    assert [p.name for p in paths[8:11]] == ["img009.jpg", "img010.jpg", "img011.jpg"]
    assert any("img0010.jpg" in line for line in ds.fix_log)


def test_well_formed_frames_keep_their_positions(tmp_path):
    root = make_casme2(tmp_path / "casme2")
    ds = D.load_dataset("casme2", root)
    paths = ds.frame_paths("sub01_EP02_01f")
    assert paths == D.list_frames(root / "CASME2_RAW_selected/sub01/EP02_01f")
    assert paths[0].name == "img46.jpg" and ds.frame_problems == []


def test_a_frame_file_without_digits_names_its_folder(tmp_path, capsys):
    from melib.cli import main

    root = make_casme_sq(tmp_path / "casme_sq")
    (root / CASME_SQ_VIDEO / "cover.jpg").write_bytes(b"x")
    folder = str(root / CASME_SQ_VIDEO)
    with pytest.raises(D.DatasetError, match=rf"{re.escape(folder)}: cover\.jpg has no frame number"):
        D.load_dataset("casme_sq", root)
    with pytest.raises(D.DatasetError, match=rf"cover\.jpg in {re.escape(folder)}"):
        D.list_frames(root / CASME_SQ_VIDEO)
    assert main(["data", "summary", "casme_sq", "--root", str(root)]) == 0
    assert "cover.jpg has no frame number" in capsys.readouterr().out
    # a folder holding only such a file is named too
    for p in (root / CASME_SQ_VIDEO).iterdir():
        if p.name != "cover.jpg":
            p.unlink()
    with pytest.raises(D.DatasetError, match=rf"{re.escape(folder)}: cover\.jpg"):
        D.load_dataset("casme_sq", root)


# ----------------------------------------------------------------------- damaged images


def _jpeg(path: Path) -> bytes:
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    cv2.imwrite(str(path), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    return path.read_bytes()


def test_a_truncated_jpeg_is_a_corrupt_frame_not_a_grey_one(tmp_path):
    data = _jpeg(tmp_path / "img001.jpg")
    (tmp_path / "img001.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(D.CorruptFrameError, match=r"img001\.jpg: the JPEG file is truncated"):
        D.read_image(tmp_path / "img001.jpg")


def test_a_jpeg_with_bytes_after_its_end_marker_still_reads(tmp_path):
    data = _jpeg(tmp_path / "img001.jpg")
    (tmp_path / "img001.jpg").write_bytes(data + b"camera trailer " * 10)
    assert D.read_image(tmp_path / "img001.jpg").shape == (64, 64, 3)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_a_header_claiming_a_huge_size_is_a_corrupt_frame(tmp_path, suffix):
    import struct
    import zlib

    import cv2
    import numpy as np

    path = tmp_path / f"img001{suffix}"
    cv2.imwrite(str(path), np.zeros((16, 16, 3), np.uint8))
    data = bytearray(path.read_bytes())
    if suffix == ".png":
        ihdr = struct.pack(">II", 200_000, 200_000) + bytes(data[24:29])
        data[16:33] = ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    else:
        sof = data.find(b"\xff\xc0")
        data[sof + 5 : sof + 9] = struct.pack(">HH", 65000, 65000)
    path.write_bytes(bytes(data))
    with pytest.raises(
        D.CorruptFrameError,
        match=rf"img001\{suffix}: the image header .*"
        "impossible size",
    ):
        D.read_image(path)


# ----------------------------------------------------------------------- package structure


def test_data_modules_import_one_way():
    from test_layers import imported_melib_modules, module_name

    paths = sorted((PROJECT_ROOT / "melib" / "data").glob("*.py"))
    graph = {
        module_name(p): {m for m in imported_melib_modules(p) if m.startswith("melib.data.")} for p in paths
    }

    def reaches(start, goal, seen=()):
        return any(
            n == goal or (n not in seen and reaches(n, goal, (*seen, n))) for n in graph.get(start, ())
        )

    cycles = [m for m in graph if reaches(m, m)]
    assert not cycles, f"import circle through {cycles}"


def test_data_package_names_its_modules_and_keeps_public_names():
    import melib.data

    assert melib.data.__doc__ and len(melib.data.__doc__.strip().splitlines()) == 1
    for name in melib.data.__all__:
        assert (PROJECT_ROOT / "melib" / "data" / f"{name}.py").is_file()
    from melib.data import synth_check

    assert synth.load_manifest and synth.naive_flow_detector_f1 and synth_check.naive_flow_detector_f1
    with pytest.raises(ValueError, match="pass a synthetic corpus root"):
        synth_check.naive_flow_detector_f1(None)


def test_a_damaged_manifest_names_its_file(tmp_path):
    (tmp_path / "casme_sq").mkdir()
    (tmp_path / "casme_sq" / "synth_manifest.json").write_text('{"videos": [')
    with pytest.raises(ValueError, match=r"casme_sq/synth_manifest\.json: the manifest is not valid"):
        synth.load_manifest(tmp_path, "casme_sq")


# ----------------------------------------------------------------------- workbook cells


@pytest.mark.parametrize("cell", ["inf", "1e400", 10**12, True, "12 frames"])
def test_a_bad_frame_cell_is_an_error_naming_its_row(tmp_path, cell):
    from test_datasets import write_sheets

    path = tmp_path / "CASME2-coding-20140508.xlsx"
    write_sheets(
        path,
        {
            "Sheet1": [
                [
                    "Subject",
                    "Filename",
                    "OnsetFrame",
                    "ApexFrame",
                    "OffsetFrame",
                    "Action Units",
                    "Estimated Emotion",
                ],
                [1, "EP02_01f", 46, 59, 86, "12", "happiness"],
                [2, "EP03_02", 10, cell, 20, "4", "disgust"],
            ]
        },
    )
    with pytest.raises(D.DatasetError, match=r"row 3: apex = .* is not a frame number"):
        D.load_annotations("casme2", path)


def test_a_smic_e_sample_with_a_typo_is_not_dropped_as_text(tmp_path):
    from test_datasets import write_sheets

    path = tmp_path / "SMIC-HS-E_annotation.xlsx"
    write_sheets(
        path,
        {
            "Sheet1": [
                ["Subject", "Filename", "OnsetF", "OffsetF", "Emotion", "FirstF"],
                [1, "s01_ne_01", 1010, 1020, "negative", 1000],
                [2, "s02_po_01", "5o5", 512, "positive", 500],
            ]
        },
    )
    with pytest.raises(D.DatasetError, match=r"row 3: OnsetF = '5o5' is not a frame number"):
        D.load_annotations("smic_e_long", path)


def test_synth_counts_only_the_frames_it_wrote(tmp_path, capsys):
    from melib.cli import main

    synth.generate("tiny", tmp_path, datasets=["casme2"], progress=False)
    assert main(["synth", "tiny", "--out", str(tmp_path), "--datasets", "smic_hs"]) == 0
    n = sum(1 for p in (tmp_path / "smic_hs").rglob("*") if p.suffix in (".jpg", ".bmp"))
    assert f"wrote {n} frames to" in capsys.readouterr().out
