"""`melib eval spotting|recognition` end to end, including malformed CSV errors."""

from __future__ import annotations

import json

import pytest

from melib.cli import main

PRED = """video,onset,offset,type,score
v1,0,9,micro,0.9
v1,1,9,micro,0.8
v2,100,150,macro,0.7
v3,5,20,micro,0.1
"""
GT = """video,onset,offset,type
v1,0,9,micro
v2,100,160,macro
v2,300,400,macro
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def run_json(argv, capsys):
    assert main(argv + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_spotting_end_to_end(tmp_path, capsys):
    pred, gt = write(tmp_path, "p.csv", PRED), write(tmp_path, "g.csv", GT)
    out = run_json(["eval", "spotting", "--pred", pred, "--gt", gt], capsys)
    rows = out["results"]
    assert (rows["micro"]["TP"], rows["micro"]["FP"], rows["micro"]["FN"]) == (1, 2, 0)
    assert (rows["macro"]["TP"], rows["macro"]["FP"], rows["macro"]["FN"]) == (1, 0, 1)
    assert (rows["overall"]["TP"], rows["overall"]["FP"], rows["overall"]["FN"]) == (2, 2, 1)
    assert rows["overall"]["F1"] == pytest.approx(4 / 7)
    per_video = {(r["video"], r["type"]): (r["TP"], r["FP"], r["FN"]) for r in out["per_video"]}
    assert per_video == {("v1", "micro"): (1, 1, 0), ("v2", "macro"): (1, 0, 1), ("v3", "micro"): (0, 1, 0)}
    authors = run_json(["eval", "spotting", "--pred", pred, "--gt", gt, "--only-videos-with-type"], capsys)[
        "results"
    ]
    assert (authors["micro"]["TP"], authors["micro"]["FP"]) == (1, 1)
    strict = run_json(["eval", "spotting", "--pred", pred, "--gt", gt, "--iou", "0.9"], capsys)["results"]
    assert strict["macro"]["TP"] == 0
    assert main(["eval", "spotting", "--pred", pred, "--gt", gt]) == 0
    table = capsys.readouterr().out
    assert "overall" in table and "maximum matching" in table


def test_header_only_files_mean_no_intervals(tmp_path, capsys):
    pred = write(tmp_path, "p.csv", "video,onset,offset,type,score\n")
    gt = write(tmp_path, "g.csv", GT)
    rows = run_json(["eval", "spotting", "--pred", pred, "--gt", gt], capsys)["results"]
    assert (rows["overall"]["TP"], rows["overall"]["FP"], rows["overall"]["FN"]) == (0, 0, 3)
    assert rows["overall"]["precision"] is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "file is empty"),
        ("video,onset,offset,score\nv1,0,9,0.5\n", "line 1: missing column(s) ['type']"),
        (
            "video,onset,offset,type,score\nv1,0,9,micro,0.5\nv1,zero,9,micro,0.5\n",
            "line 3: onset must be an integer",
        ),
        ("video,onset,offset,type,score\nv1,0,9.5,micro,0.5\n", "line 2: offset must be an integer"),
        ("video,onset,offset,type,score\nv1,inf,9,micro,0.5\n", "line 2: onset must be an integer"),
        ("video,onset,offset,type,score\nv1,0,9,micro,nan\n", "line 2: score must be a finite"),
        (
            "video,onset,offset,type,score\nv1,0,9,micro,0.5\n\nv1,9,3,micro,0.5\n",
            "line 4: onset 9 is after offset 3",
        ),
        ("video,onset,offset,type,score\nv1,0,9,nano,0.5\n", "line 2: unknown type 'nano'"),
        ("video,onset,offset,type,score\nv1,0,9,micro,high\n", "line 2: score must be a finite"),
        ("video,onset,offset,type,score\nv1,0,9,micro\n", "line 2: 4 fields but the header has 5"),
    ],
)
def test_malformed_prediction_csv(tmp_path, capsys, text, message):
    pred = write(tmp_path, "bad.csv", text)
    gt = write(tmp_path, "g.csv", GT)
    assert main(["eval", "spotting", "--pred", pred, "--gt", gt]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and message in err


def test_malformed_ground_truth_and_missing_file(tmp_path, capsys):
    pred = write(tmp_path, "p.csv", PRED)
    gt = write(tmp_path, "gt.csv", "video,onset,offset,type\nv1,3,x,micro\n")
    assert main(["eval", "spotting", "--pred", pred, "--gt", gt]) == 2
    err = capsys.readouterr().err
    assert "gt.csv: line 2: offset must be an integer" in err
    assert main(["eval", "spotting", "--pred", pred, "--gt", str(tmp_path / "none.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err


RECOGNITION = """sample,subject,dataset,true,predicted
a1,s1,casme2,negative,negative
a2,s1,casme2,positive,negative
b1,s2,samm,surprise,surprise
b2,s2,samm,negative,negative
b3,s3,samm,positive,positive
"""


def test_recognition_end_to_end(tmp_path, capsys):
    pred = write(tmp_path, "r.csv", RECOGNITION)
    out = run_json(["eval", "recognition", "--pred", pred], capsys)
    # Pooled: negative F1 4/5, positive 2/3, surprise 1 -> UF1 = 37/45.
    assert out["results"]["all"]["UF1"] == pytest.approx((4 / 5 + 2 / 3 + 1) / 3)
    assert out["results"]["all"]["UAR"] == pytest.approx((1 + 1 / 2 + 1) / 3)
    assert out["results"]["samm"]["accuracy"] == 1.0
    assert out["confusion"]["labels"] == ["negative", "positive", "surprise"]
    per_fold = run_json(["eval", "recognition", "--pred", pred, "--per-fold-mean"], capsys)
    # s1: negative F1 2/3, positive 0 -> 1/3; s2 and s3 perfect.
    assert per_fold["results"]["all"]["UF1"] == pytest.approx((1 / 3 + 1 + 1) / 3)
    assert main(["eval", "recognition", "--pred", pred]) == 0
    assert "confusion matrix" in capsys.readouterr().out


def test_malformed_recognition_csv(tmp_path, capsys):
    bad = write(tmp_path, "r.csv", "sample,subject,true,predicted\nx,s1,negative,\n")
    assert main(["eval", "recognition", "--pred", bad]) == 2
    assert "r.csv: line 2: empty predicted" in capsys.readouterr().err
    missing = write(tmp_path, "m.csv", "sample,true,predicted\nx,a,a\n")
    assert main(["eval", "recognition", "--pred", missing]) == 2
    assert "m.csv: line 1: missing column(s) ['subject']" in capsys.readouterr().err


@pytest.mark.parametrize("seed", range(5))
def test_cli_counts_agree_with_an_independent_matching(tmp_path, capsys, seed):
    import numpy as np
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_bipartite_matching

    rng = np.random.default_rng(500 + seed)

    def rows(count):
        out = []
        for _ in range(count):
            onset = int(rng.integers(0, 80))
            out.append(
                (
                    f"clip {rng.integers(3)}",
                    onset,
                    onset + int(rng.integers(0, 15)),
                    ("micro", "macro")[int(rng.integers(2))],
                    float(rng.random()),
                )
            )
        return out

    pred_rows, gt_rows = rows(40), rows(25)
    pred = write(
        tmp_path,
        "p.csv",
        "video,onset,offset,type,score\n"
        + "".join(f'"{v}",{a},{b},{t},{s:.6f}\n' for v, a, b, t, s in pred_rows),
    )
    gt = write(
        tmp_path,
        "g.csv",
        "video,onset,offset,type\n" + "".join(f'"{v}",{a},{b},{t}\n' for v, a, b, t, _ in gt_rows),
    )
    out = run_json(["eval", "spotting", "--pred", pred, "--gt", gt], capsys)["results"]
    for kind in ("micro", "macro"):
        p = [r for r in pred_rows if r[3] == kind]
        g = [r for r in gt_rows if r[3] == kind]
        edges = np.zeros((len(p), len(g)), dtype=np.int8)
        for i, (pv, pa, pb, _, _) in enumerate(p):
            for j, (gv, ga, gb, _, _) in enumerate(g):
                shared = max(0, min(pb, gb) - max(pa, ga) + 1)
                union = (pb - pa + 1) + (gb - ga + 1) - shared
                edges[i, j] = pv == gv and 2 * shared >= union
        tp = int((maximum_bipartite_matching(csr_matrix(edges), perm_type="column") >= 0).sum())
        assert (out[kind]["TP"], out[kind]["FP"], out[kind]["FN"]) == (tp, len(p) - tp, len(g) - tp)
