"""Issue 14 (evaluation, commands, caches): every bad input gets one clear line."""

from __future__ import annotations

import errno
import io
import math

import numpy as np
import pandas as pd
import pytest
from builders import write_notebook
from hypothesis import given, settings
from hypothesis import strategies as st

from melib import reproduce as rep
from melib import runtime
from melib.cli import main
from melib.evaluation.recognition import evaluate_recognition
from melib.evaluation.spotting import EvaluationWarning, evaluate_spotting

# ------------------------------------------------------------------ item 3: parameters


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    sources = tmp_path / "notebooks"
    sources.mkdir()
    write_notebook(
        sources / "10_one.ipynb",
        "seed = 0\nprofile = 'book'\ndata_root = None\nepochs = 10\nlr = 5e-4\ncgpo = True\nk = None",
    )
    monkeypatch.setattr(rep, "notebooks_dir", lambda: sources)
    monkeypatch.setattr(rep, "project_root", lambda: tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"epoch": 20}, "no notebook run here has a parameter 'epoch'; did you mean epochs?"),
        ({"seed": "abc"}, "seed must be a whole number"),
        ({"epochs": 2.5}, "epochs must be a whole number"),
        ({"lr": "fast"}, "lr must be a number"),
        ({"cgpo": "yes please"}, "cgpo must be true or false"),
        ({"profile": "full"}, "conflicts with --profile smoke"),
    ],
)
def test_bad_parameters_are_refused_before_running(workspace, overrides, message):
    with pytest.raises(ValueError, match=message.replace("?", r"\?").replace("(", r"\(")):
        rep.reproduce(profile="smoke", overrides=overrides, out=workspace / "o")
    assert not (workspace / "o" / "10_one.ipynb").exists()


def test_good_parameters_pass_the_check(workspace):
    sources = rep.discover_notebooks()
    rep.check_overrides({"seed": 3, "epochs": 2, "lr": 1, "cgpo": False, "k": "anything"}, sources)


def test_cli_reports_a_typo_in_one_line(workspace, capsys):
    assert main(["reproduce", "--no-book", "-p", "epoch=20"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean epochs" in err[0]
    assert main(["reproduce", "--no-book", "-p", "seed=["]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_out_that_is_a_file_is_refused(workspace, capsys):
    blocker = workspace / "blocker"
    blocker.write_text("")
    assert main(["reproduce", "--no-book", "--out", str(blocker)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["reproduce", "--no-book", "--out", str(blocker / "sub")]) == 2
    assert "cannot create the folder" in capsys.readouterr().err


# ------------------------------------------------------------- item 6: leftovers


def test_stale_partials_of_killed_runs_are_removed_and_failures_kept_under_out(workspace):
    out = workspace / "o"
    out.mkdir()
    stale = [
        out / ".10_one.running.ipynb",
        out / ".10_one.running.999999999.ipynb",
        out / ".10_one.abcd_123.tmp.ipynb",
    ]
    keep = [out / ".10_one.notes.ipynb", out / ".other.running.ipynb", out / "mine.txt"]
    for path in stale + keep:
        path.write_text("{}")
    live = out / ".10_one.running.1.ipynb"  # pid 1 is alive: another run's scratch
    live.write_text("{}")
    rep.reproduce(profile="smoke", out=out)
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in keep + [live]), "only melib's stale names go"
    write_notebook(workspace / "notebooks" / "10_one.ipynb", "seed = 0", "raise RuntimeError('x')")
    [result] = rep.reproduce(profile="smoke", out=out, force=True)
    assert result.status == "failed" and result.output == out / "failed" / "10_one.ipynb"
    assert result.output.is_file() and not (workspace / "_build").exists()


def test_nbval_never_collects_hidden_or_failed_notebooks(tmp_path):
    import conftest

    (tmp_path / "notebooks" / "failed").mkdir(parents=True)
    assert conftest.pytest_ignore_collect(tmp_path / ".03_x.running.1.ipynb", None) is True
    assert conftest.pytest_ignore_collect(tmp_path / "notebooks" / "failed", None) is True
    assert conftest.pytest_ignore_collect(tmp_path / "03_x.ipynb", None) is None


def _damage(path, how, data=None):
    if how == "truncate":
        with open(path, "r+b") as fh:
            fh.truncate(max(1, path.stat().st_size // 2))
    elif how == "flip":  # one byte of the stored values (not zip padding or comments)
        raw = bytearray(path.read_bytes())
        found = raw.find(data[100:116].tobytes()) if data is not None else -1
        raw[found if found >= 0 else len(raw) // 2] ^= 0xFF
        path.write_bytes(bytes(raw))
    else:
        path.write_bytes(b"not a cache file")
    runtime._verified.clear()  # as a new process would


@pytest.mark.parametrize("how", ["truncate", "flip", "overwrite"])
@pytest.mark.parametrize("kind", ["npy", "npz", "pt", "memmap"])
def test_damaged_cache_files_are_named_and_recomputed(tmp_path, capsys, kind, how):
    from melib.features.cache import load_features, write_memmap

    path = tmp_path / f"entry.{'npy' if kind == 'memmap' else kind}"
    data = np.arange(4096, dtype=np.float32)

    def write():
        if kind == "npy":
            runtime.save_npy(path, data)
        elif kind == "npz":
            runtime.save_npz(path, x=data)
        elif kind == "pt":
            import torch

            runtime.save_torch(path, {"model": torch.from_numpy(data)})
        else:
            with write_memmap(path, data.shape) as mm:
                mm[:] = data

    write()
    assert runtime.cache_ok(path)
    _damage(path, how, data)
    loader = {
        "npy": runtime.load_npy,
        "npz": runtime.load_npz,
        "pt": runtime.load_torch,
        "memmap": load_features,
    }[kind]
    with pytest.raises(runtime.CacheError, match=f"cache file {path} is damaged"):
        loader(path)
    assert not path.exists(), "a damaged entry is removed so that the next run recomputes it"
    write()
    _damage(path, how, data)
    assert runtime.cache_ok(path) is False
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "recomputing" in err[0]
    if kind in ("npy", "memmap"):
        write()
        _damage(path, how, data)
        assert np.array_equal(load_features(path, recompute=write), data)


def test_caches_without_a_record_are_checked_and_recorded(tmp_path):
    path = tmp_path / "old.npy"
    np.save(path, np.zeros(10))
    assert runtime.cache_ok(path) and runtime.check_record_path(path).is_file()
    runtime.discard_cache(path)
    assert not path.exists() and not runtime.check_record_path(path).exists()


# -------------------------------------------------------------- item 5: commands


def test_os_errors_are_one_line(monkeypatch, tmp_path, capsys):
    import melib.evaluation.cli as ev

    def unreadable(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "p.csv"))

    monkeypatch.setattr(ev, "read_intervals_csv", unreadable)
    code = main(["eval", "spotting", "--pred", "p.csv", "--gt", "g.csv"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "p.csv: permission denied (check the permissions" in err[0]


def test_broken_pipe_exits_quietly(monkeypatch, tmp_path, capsys):
    import melib.evaluation.cli as ev

    def closed(args):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(ev, "cli_eval_recognition", closed)
    monkeypatch.setattr("melib.cli._quiet_stdout", lambda: None)
    assert main(["eval", "recognition", "--pred", "x.csv"]) == 141
    assert capsys.readouterr().err == ""


def test_bugs_are_one_line_unless_debugging(monkeypatch, capsys):
    import melib.evaluation.cli as ev

    monkeypatch.setattr(ev, "cli_eval_recognition", lambda args: {}["oops"])
    assert main(["eval", "recognition", "--pred", "x.csv"]) == 1
    assert "internal error: KeyError" in capsys.readouterr().err
    with pytest.raises(KeyError):
        main(["--debug", "eval", "recognition", "--pred", "x.csv"])
    monkeypatch.setenv("MELIB_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["eval", "recognition", "--pred", "x.csv"])


def test_latin1_csv_is_read_with_a_warning(tmp_path, capsys):
    path = tmp_path / "r.csv"
    path.write_bytes(
        "sample,subject,true,predicted\nsub1_a,sub1,Négatif,négatif\nsub1_b,sub1,surprise,surprise\n".encode(
            "latin-1"
        )
    )
    assert main(["eval", "recognition", "--pred", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    assert f"{path}: line 2: not UTF-8 text; read as cp1252" in captured.err
    assert '"accuracy": 1.0' in captured.out


def test_a_folder_given_as_a_csv(tmp_path, capsys):
    assert main(["eval", "recognition", "--pred", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


# ---------------------------------------------------------- item 4: evaluation input


def _one_subject(samples, true, predicted) -> pd.DataFrame:
    """Recognition predictions of one subject, ``s1``."""
    return pd.DataFrame(
        {"sample": samples, "subject": ["s1"] * len(samples), "true": true, "predicted": predicted}
    )


def test_recognition_labels_ignore_case_and_spaces():
    frame = _one_subject(
        ["a", "b", "c"], ["Negative", "surprise ", "POSITIVE"], ["negative", "Surprise", "positive"]
    )
    result = evaluate_recognition(frame, labels=["Negative", "Positive", "Surprise"])
    assert result.table.loc["all", "accuracy"] == 1.0
    assert list(result.confusion.columns) == ["negative", "positive", "surprise"]


def test_repeated_and_conflicting_samples():
    frame = _one_subject(["a", "b", "a"], ["negative", "surprise", "Negative"], ["surprise"] * 3)
    with pytest.warns(EvaluationWarning, match="row 2 repeats sample 'a' of row 0"):
        result = evaluate_recognition(frame)
    assert result.table.loc["all", "n"] == 2
    frame.loc[2, "predicted"] = "negative"
    with pytest.raises(ValueError, match="row 2: sample 'a' is also row 0 with other values"):
        evaluate_recognition(frame)


def test_recognition_csv_conflict_names_the_lines(tmp_path, capsys):
    path = tmp_path / "r.csv"
    path.write_text("sample,subject,true,predicted\na,s1,negative,negative\na,s1,positive,negative\n")
    assert main(["eval", "recognition", "--pred", str(path)]) == 2
    assert "line 3: sample 'a' is also line 2" in capsys.readouterr().err


def _intervals(rows, score=False):
    columns = ["video", "onset", "offset", "type"] + (["score"] if score else [])
    return pd.DataFrame(rows, columns=columns)


def test_spotting_refuses_negative_and_huge_frames():
    gt = _intervals([("v", 0, 9, "micro")])
    with pytest.raises(ValueError, match="row 0: onset -1 is negative"):
        evaluate_spotting(_intervals([("v", -1, 9, "micro", 0.5)], True), gt)
    with pytest.raises(ValueError, match="too large for a frame number"):
        evaluate_spotting(_intervals([("v", 0, 10**20, "micro", 0.5)], True), gt)


def test_repeated_ground_truth_counts_once():
    gt = _intervals([("v", 0, 9, "micro"), ("v", 20, 29, "micro"), ("v", 0, 9, "Micro")])
    pred = _intervals([("v", 0, 9, "micro", 0.5)], True)
    with pytest.warns(EvaluationWarning, match="row 2 repeats row 0"):
        result = evaluate_spotting(pred, gt)
    assert tuple(result.table.loc["micro", ["TP", "FP", "FN"]]) == (1, 0, 1)


def test_no_matching_video_name_is_flagged_with_a_hint():
    gt = _intervals([("s15_0101", 0, 9, "micro"), ("s16_0202", 0, 9, "micro")])
    pred = _intervals([("15_0101disgustingteeth", 0, 9, "micro", 0.5)], True)
    with pytest.warns(EvaluationWarning, match="'15_0101disgustingteeth' vs ground truth 's15_0101'"):
        result = evaluate_spotting(pred, gt)
    assert any("no prediction video matches" in note for note in result.notes)


@pytest.mark.parametrize(
    "csv_text, message",
    [
        ("video,onset,offset,type\nv,0,99999999999999999999,micro\n", "line 2: offset"),
        ("video,onset,offset,type\nv,-5,3,micro\n", "line 2: onset '-5' is negative"),
        ('video,onset,offset,type\nv,0,3,micro\nv,"0,3,micro\n', "line"),
    ],
)
def test_spotting_csv_errors(tmp_path, capsys, csv_text, message):
    gt = tmp_path / "g.csv"
    gt.write_text(csv_text)
    assert main(["eval", "spotting", "--pred", str(gt), "--gt", str(gt)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(gt) in err[0]


def test_spotting_csv_repeated_ground_truth_names_the_line(tmp_path, capsys):
    gt = tmp_path / "g.csv"
    gt.write_text("video,onset,offset,type\nv,0,9,micro\nv,0,9,micro\n")
    pred = tmp_path / "p.csv"
    pred.write_text("video,onset,offset,type,score\nv,0,9,micro,0.5\n")
    assert main(["eval", "spotting", "--pred", str(pred), "--gt", str(gt), "--json"]) == 0
    captured = capsys.readouterr()
    assert f"{gt}: line 3 repeats line 2" in captured.err
    assert '"FN": 0' in captured.out


# ---------------------------------------------------------- item 7: property tests

TYPES = st.sampled_from(["micro", "macro"])
VIDEOS = st.sampled_from(["v1", "v2", "v3"])


@st.composite
def spans(draw, scored):
    onset = draw(st.integers(0, 60))
    row = (draw(VIDEOS), onset, onset + draw(st.integers(0, 15)), draw(TYPES))
    return row + ((draw(st.floats(0, 1)),) if scored else ())


def _counts(result, kind="overall"):
    return tuple(int(result.table.loc[kind, c]) for c in ("TP", "FP", "FN"))


def _score(pred_rows, gt_rows):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvaluationWarning)
        return evaluate_spotting(
            _intervals(pred_rows, True), _intervals(gt_rows).drop_duplicates(), compute_ap=False
        )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(spans(True), max_size=10), st.lists(spans(False), max_size=10), st.randoms(use_true_random=False)
)
def test_spotting_counts_ignore_row_order(pred, gt, rnd):
    shuffled_pred, shuffled_gt = list(pred), list(gt)
    rnd.shuffle(shuffled_pred)
    rnd.shuffle(shuffled_gt)
    assert _counts(_score(pred, gt)) == _counts(_score(shuffled_pred, shuffled_gt))


@settings(max_examples=60, deadline=None)
@given(st.lists(spans(True), max_size=10), st.lists(spans(False), max_size=10))
def test_spotting_tp_never_exceeds_either_count(pred, gt):
    result = _score(pred, gt)
    for kind in ("micro", "macro", "overall"):
        row = result.table.loc[kind]
        assert row["TP"] <= min(row["n_pred"], row["n_gt"])
        assert row["TP"] + row["FP"] == row["n_pred"] and row["TP"] + row["FN"] == row["n_gt"]


@settings(max_examples=60, deadline=None)
@given(st.lists(spans(True), max_size=10), st.lists(spans(False), min_size=1, max_size=10), VIDEOS, TYPES)
def test_a_far_away_false_positive_never_raises_f1(pred, gt, video, kind):
    before = _score(pred, gt).table.loc["overall", "F1"]
    after = _score(pred + [(video, 10_000, 10_005, kind, 0.5)], gt).table.loc["overall", "F1"]
    assert after <= before or math.isnan(before)


LABELS = st.sampled_from(["negative", "positive", "surprise", "Negative", "SURPRISE "])


@st.composite
def recognition_tables(draw):
    n = draw(st.integers(1, 25))
    return pd.DataFrame(
        {
            "sample": [f"x{i}" for i in range(n)],
            "subject": [draw(st.sampled_from(["s1", "s2", "s3"])) for _ in range(n)],
            "true": [draw(LABELS) for _ in range(n)],
            "predicted": [draw(LABELS) for _ in range(n)],
        }
    )


@settings(max_examples=60, deadline=None)
@given(recognition_tables(), st.randoms(use_true_random=False), st.booleans())
def test_recognition_scores_ignore_row_order(frame, rnd, per_fold_mean):
    order = list(range(len(frame)))
    rnd.shuffle(order)
    a = evaluate_recognition(frame, per_fold_mean=per_fold_mean).table
    b = evaluate_recognition(frame.iloc[order].reset_index(drop=True), per_fold_mean=per_fold_mean).table
    pd.testing.assert_frame_equal(a, b)


@settings(max_examples=60, deadline=None)
@given(recognition_tables())
def test_recognition_correct_count_is_bounded(frame):
    result = evaluate_recognition(frame)
    confusion = result.confusion.to_numpy()
    correct = int(np.trace(confusion))
    assert correct <= len(frame) and confusion.sum() == len(frame)
    assert 0 <= result.table.loc["all", "UF1"] <= 1 and 0 <= result.table.loc["all", "UAR"] <= 1


@settings(max_examples=60, deadline=None)
@given(recognition_tables(), LABELS)
def test_a_wrong_extra_prediction_never_raises_accuracy(frame, label):
    wrong = "neutral-never-true"
    extra = pd.DataFrame({"sample": ["extra"], "subject": ["s9"], "true": [label], "predicted": [wrong]})
    before = evaluate_recognition(frame).table.loc["all", "accuracy"]
    after = evaluate_recognition(pd.concat([frame, extra], ignore_index=True)).table
    assert after.loc["all", "accuracy"] <= before


def test_cli_stdout_flush_errors_are_caught(monkeypatch, capsys):
    """A pipe closed while the last line is flushed is the same quiet exit."""
    import melib.evaluation.cli as ev

    class Closed(io.StringIO):
        def flush(self):
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(ev, "cli_eval_recognition", lambda args: 0)
    monkeypatch.setattr("sys.stdout", Closed())
    monkeypatch.setattr("melib.cli._quiet_stdout", lambda: None)
    assert main(["eval", "recognition", "--pred", "x.csv"]) == 141
