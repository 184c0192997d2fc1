"""Reliability of the data layer: no data loss, no debris, concurrent runs, damaged trees."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("manifest", ['{"dataset": "casme2"}', "not json",
                                      '{"dataset": "samm", "generator": "melib.data.synth v4"}'])
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
    assert _tree(out / "casme2") == {k[len("casme2/"):]: v for k, v in first.items()
                                     if k.startswith("casme2/")}
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
    cmd = [sys.executable, "-m", "melib", "synth", "tiny", "--out", str(out),
           "--datasets", "smic_hs"]
    runs = [subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
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
    keep = [".tiny-seed0.notes.tmp", ".tiny-seed01.abcd1234.tmp", "tiny-seed0.abcd1234.tmp",
            ".tiny-seed0.lock", ".feat.k2j4h5g6.tmp.npy"]
    for name in keep:
        (tmp_path / name).write_text("keep")
    removed = runtime.remove_stale_temps(target)
    assert [p.name for p in removed] == [".tiny-seed0.ab_d1234.tmp"]
    assert [p.name for p in runtime.remove_stale_temps(tmp_path / "feat.npz")] == \
        [".feat.k2j4h5g6.tmp.npz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


def test_ensure_corpus_removes_a_killed_runs_temporary_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MELIB_CACHE", str(tmp_path))
    stale = tmp_path / "synth" / ".tiny-seed3.x1y2z3w4.tmp"
    (stale / "casme_sq").mkdir(parents=True)
    other = tmp_path / "synth" / ".tiny-seed4.x1y2z3w4.tmp"  # another corpus's: not ours to judge
    other.mkdir()

    def fake_generate(preset, out, seed=0, **kwargs):
        (Path(out) / "synth_corpus.json").write_text(json.dumps(
            {"generator": f"melib.data.synth v{synth.GENERATOR_VERSION}",
             "datasets": list(synth.DATASET_KEYS)}))
        return Path(out)

    monkeypatch.setattr(synth, "generate", fake_generate)
    synth.ensure_corpus("tiny", 3, progress=False)
    assert not stale.exists() and other.is_dir()
