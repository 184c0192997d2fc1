"""Regressions found by benchmarks/probe_reliability.py (issue 14, second pass).

Each test fails without its fix: a user file lost by ``melib synth``, damaged cached
corpora reused, silently wrong evaluation input, parameters that reached a notebook.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from melib import cli
from melib import reproduce as rep
from melib.data import datasets, synth
from melib.evaluation.recognition import evaluate_recognition
from melib.evaluation.spotting import EvaluationWarning, evaluate_spotting
from melib.pipelines import common, cropnet, softnet

GT = {"video": ["s15_0101", "s16_0102"], "onset": [10, 5], "offset": [30, 25], "type": ["macro", "macro"]}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """casme2 and smic_hs of the tiny corpus (a few seconds)."""
    out = tmp_path_factory.mktemp("corpus")
    synth.generate("tiny", out, datasets=["casme2", "smic_hs"], progress=False)
    return out


def _copy(corpus, tmp_path, key="casme2"):
    import shutil

    shutil.copytree(corpus / key, tmp_path / key)
    return tmp_path / key


# ------------------------------------------------------------------------------- synth


def test_synth_keeps_a_user_file_inside_a_synthetic_dataset_folder(corpus, tmp_path, capsys):
    folder = _copy(corpus, tmp_path)
    (folder / "my_notes.txt").write_text("precious")
    (folder / "results").mkdir()
    (folder / "results" / "f1.csv").write_text("0.5")
    status = cli.main(["synth", "tiny", "--out", str(tmp_path), "--datasets", "casme2"])
    assert status == 0 and not (folder / "my_notes.txt").exists()
    kept = tmp_path / "casme2.kept-files"
    assert (kept / "my_notes.txt").read_text() == "precious"
    assert (kept / "results" / "f1.csv").read_text() == "0.5"
    err = capsys.readouterr().err
    assert "2 file(s) melib synth did not write" in err and str(kept) in err
    assert synth._foreign_files(folder) == []


def test_foreign_files_lists_only_what_synth_did_not_write(corpus, tmp_path):
    folder = _copy(corpus, tmp_path, "smic_hs")
    assert synth._foreign_files(folder) == []
    video = next(p for p in folder.rglob("*") if p.is_dir() and any(p.glob("*.bmp")))
    (video / "results.csv").write_text("x")
    assert synth._foreign_files(folder) == [str((video / "results.csv").relative_to(folder))]


@pytest.mark.parametrize("seed", ["-1"])
def test_synth_names_a_negative_seed(tmp_path, capsys, seed):
    assert cli.main(["synth", "tiny", "--out", str(tmp_path), "--seed", seed]) == 2
    assert "--seed -1" in capsys.readouterr().err


def test_a_damaged_cached_corpus_is_regenerated_and_said(corpus, tmp_path, monkeypatch, capsys):
    import shutil

    root = tmp_path / "synth" / "tiny-seed0"
    root.mkdir(parents=True)
    for key in synth.DATASET_KEYS:
        shutil.copytree(corpus / "casme2", root / key)  # stand-ins; only casme2 is checked
    for key in synth.DATASET_KEYS:
        manifest = json.loads((root / key / "synth_manifest.json").read_text())
        (root / key / "synth_manifest.json").write_text(json.dumps({**manifest, "dataset": key}))
    (root / "synth_corpus.json").write_text(
        json.dumps(
            {"generator": f"melib.data.synth v{synth.GENERATOR_VERSION}", "datasets": synth.DATASET_KEYS}
        )
    )
    assert synth._corpus_damage(root) is None
    frame = sorted((root / "casme2").rglob("*.jpg"))[3]
    frame.write_bytes(b"")
    synth._SOUND_CORPORA.clear()
    assert "frames" in synth._corpus_damage(root)
    monkeypatch.setenv("MELIB_CACHE", str(tmp_path))
    calls = []
    monkeypatch.setattr(synth, "generate", lambda preset, out, seed, progress: calls.append(out))
    synth.ensure_corpus("tiny", 0, progress=False)
    assert len(calls) == 1
    assert "is damaged" in capsys.readouterr().err


# ---------------------------------------------------------------------------- datasets


def _rewrite_casme2(folder, change):
    workbook = folder / "CASME2-coding-20140508.xlsx"
    frame = change(pd.read_excel(workbook))
    frame.to_excel(workbook, index=False)
    return workbook


def test_a_workbook_without_rows_is_an_error(corpus, tmp_path):
    workbook = _rewrite_casme2(_copy(corpus, tmp_path), lambda f: f.iloc[:0])
    with pytest.raises(datasets.DatasetError, match="no annotation rows"):
        datasets.load_dataset("casme2", tmp_path / "casme2")
    assert workbook.name


def test_a_repeated_workbook_row_is_counted_once_and_logged(corpus, tmp_path):
    folder = _copy(corpus, tmp_path)
    before = datasets.load_dataset("casme2", folder)
    _rewrite_casme2(folder, lambda f: pd.concat([f, f.iloc[[0]]], ignore_index=True))
    after = datasets.load_dataset("casme2", folder)
    assert len(after.annotations) == len(before.annotations)
    assert any("repeat earlier rows" in line for line in after.fix_log)


def test_load_from_data_root_names_a_missing_data_root():
    with pytest.raises(datasets.DatasetPathError, match="data_root=None"):
        datasets.load_from_data_root("casme2", None)


# -------------------------------------------------------------------------- evaluation


@pytest.mark.parametrize("video", [None, np.nan, "  "])
def test_spotting_refuses_a_missing_video_name(video):
    pred = pd.DataFrame({**{k: v[:1] for k, v in GT.items()}, "video": [video], "score": [1.0]})
    with pytest.raises(ValueError, match="row 0: empty video name"):
        evaluate_spotting(pred, pd.DataFrame(GT))


def test_spotting_refuses_true_false_frames():
    pred = pd.DataFrame({**{k: v[:1] for k, v in GT.items()}, "onset": [True], "offset": [True]})
    with pytest.raises(ValueError, match="onset must be an integer frame number"):
        evaluate_spotting(pred, pd.DataFrame(GT))


def test_spotting_warns_about_video_names_that_differ_only_in_case():
    pred = pd.DataFrame({**GT, "video": ["s15_0101", "S16_0102"]})
    with pytest.warns(EvaluationWarning, match="'S16_0102' vs ground truth 's16_0102'"):
        result = evaluate_spotting(pred, pd.DataFrame(GT))
    assert result.notes and "upper/lower case" in result.notes[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate_spotting(pd.DataFrame(GT), pd.DataFrame(GT))  # exact names: no warning


def test_spotting_csv_refuses_a_repeated_column(tmp_path, capsys):
    pred = tmp_path / "pred.csv"
    gt = tmp_path / "gt.csv"
    pred.write_text("video,onset,offset,type,score\ns1,1,5,micro,0.5\n")
    gt.write_text("video,onset,offset,type,onset\ns1,1,5,micro,3\n")
    assert cli.main(["eval", "spotting", "--pred", str(pred), "--gt", str(gt)]) == 2
    err = capsys.readouterr().err
    assert "gt.csv: line 1: column(s) ['onset'] appear more than once" in err


def test_recognition_csv_warns_about_a_predicted_label_that_no_sample_has(tmp_path, capsys):
    pred = tmp_path / "pred.csv"
    pred.write_text("sample,subject,true,predicted\na,s1,surprise,suprise\nb,s2,negative,negative\n")
    assert cli.main(["eval", "recognition", "--pred", str(pred)]) == 0
    err = capsys.readouterr().err
    assert "line 2: predicted label 'suprise' is not among the true labels" in err


def test_recognition_refuses_an_empty_table_and_labels_that_leave_out_a_class():
    frame = pd.DataFrame(
        {"sample": ["a", "b"], "subject": ["s1", "s2"], "true": ["x", "y"], "predicted": ["x", "x"]}
    )
    with pytest.raises(ValueError, match="no rows"):
        evaluate_recognition(frame.iloc[:0])
    with pytest.raises(ValueError, match=r"leaves out \['y'\]"):
        evaluate_recognition(frame, labels=["x"])
    assert evaluate_recognition(frame, labels=["x", "y"]).table.loc["all", "n"] == 2


# ------------------------------------------------------------------ parameters, reproduce


def test_configure_checks_the_datasets_under_data_root(tmp_path):
    with pytest.raises(common.ParameterError, match="data_root=.*no casme_sq/ folder"):
        softnet.configure(profile="smoke", data_root=str(tmp_path))
    (tmp_path / "samm").mkdir()
    with pytest.raises(common.ParameterError, match="no casme2/ folder .*found: samm"):
        cropnet.configure(profile="smoke", data_root=str(tmp_path))
    (tmp_path / "casme_sq").mkdir()
    softnet.configure(profile="smoke", data_root=str(tmp_path))


@pytest.mark.parametrize("tvl1", [{"nscales": -3}, {"tau": 0}, {"scale_step": 1.5}, {"warps": 2.5}])
def test_softnet_checks_tvl1_fields(tvl1):
    with pytest.raises(common.ParameterError, match=r"tvl1\["):
        softnet.configure(profile="smoke", tvl1=tvl1)


def test_softnet_accepts_valid_tvl1_fields():
    setup = softnet.configure(profile="smoke", tvl1={"nscales": 3, "median_filtering": 1})
    assert setup.flow.tvl1.nscales == 3


def test_a_parameter_given_twice_with_two_values_is_refused():
    with pytest.raises(ValueError, match="-p seed: given twice"):
        rep.parse_overrides(["seed=1", "seed=2"])
    assert rep.parse_overrides(["seed=1", "seed=1"]) == {"seed": 1}


def _stub_execution(monkeypatch):
    ran = []

    def execute_one(source, output, parameters, timeout, failed_dir):
        ran.append(source.stem)
        return rep.RunResult(source.stem, "ok", output=output)

    monkeypatch.setattr(rep, "execute_one", execute_one)
    return ran


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epochs": -1}, "03_softnet: parameter epochs=-1"),
        ({"seed": -3}, "03_softnet: parameter seed=-3"),
        ({"lr": "abc"}, "03_softnet: parameter lr='abc'"),
    ],
)
def test_reproduce_checks_values_with_the_papers_configure(monkeypatch, tmp_path, overrides, message):
    ran = _stub_execution(monkeypatch)
    with pytest.raises(ValueError, match=message):
        rep.reproduce(profile="smoke", only=["03"], overrides=overrides, out=tmp_path)
    assert ran == []


def test_reproduce_refuses_a_data_root_without_datasets_and_a_bad_timeout(monkeypatch, tmp_path):
    ran = _stub_execution(monkeypatch)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no dataset folder in it"):
        rep.reproduce(profile="smoke", only=["03"], data_root=str(tmp_path / "empty"), out=tmp_path / "o")
    with pytest.raises(ValueError, match="--timeout 0"):
        rep.reproduce(profile="smoke", only=["03"], out=tmp_path / "o", timeout=0)
    assert ran == []
