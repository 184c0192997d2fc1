"""Reliability probe: bad inputs, interruptions, damaged caches (issue 14, second pass).

Run from the project root (light: the ``tiny`` corpus, no notebook is executed)::

    MELIB_CACHE=/tmp/probe-cache python benchmarks/probe_reliability.py [--only SUBSTR] [--json OUT]

Every case returns one class:

* ``clear``     non-zero exit / exception whose one line names the file or field and a fix
* ``correct``   a valid result (possibly with a warning that names the problem)
* ``silent``    a wrong or unflagged result
* ``traceback`` a Python traceback, an internal error or a message that names nothing
* ``dataloss``  user data destroyed
* ``leftover``  partial files left after a rerun
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MELIB_CACHE", "/tmp/probe-cache")

from melib import cli  # noqa: E402

CASES: list = []
WORK = Path(tempfile.mkdtemp(prefix="melib-probe-"))
PRISTINE = Path(os.environ.get("PROBE_DATA", "/tmp/probe-data"))


def case(name):
    def wrap(fn):
        CASES.append((name, fn))
        return fn

    return wrap


# --------------------------------------------------------------------------- helpers


def run_cli(argv, stdin=None):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("always")
        try:
            rc = cli.main([str(a) for a in argv])
        except SystemExit as exc:  # argparse
            rc = exc.code if isinstance(exc.code, int) else 2
        except BaseException:  # noqa: BLE001
            err.write(traceback.format_exc())
            rc = "raised"
    return rc, out.getvalue(), err.getvalue()


def classify_error(rc, out, err, names=()):
    """Expected: a clear error. ``names``: substrings the message must contain."""
    if rc == "raised" or "Traceback" in err or "internal error" in err:
        return "traceback", err.strip().splitlines()[-1] if err.strip() else "?"
    if rc == 0:
        return "silent", "exit 0: " + (err.strip() or out.strip())[:200]
    lines = [ln for ln in err.strip().splitlines() if "error" in ln]
    if not lines:
        return "traceback", f"rc={rc} but no error line: {err.strip()[:200]!r}"
    missing = [n for n in names if n.lower() not in err.lower()]
    if missing:
        return "traceback", f"error does not name {missing}: {lines[-1][:220]}"
    return "clear", lines[-1][:220]


def expect_error(argv, names=()):
    rc, out, err = run_cli(argv)
    return classify_error(rc, out, err, names)


def api_error(fn, names=(), exc_types=(ValueError, OSError)):
    """Expected: an exception of exc_types whose text has ``names``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = fn()
        except exc_types as exc:
            text = str(exc)
            missing = [n for n in names if n.lower() not in text.lower()]
            if missing or "\n" in text.strip():
                return "traceback", f"{type(exc).__name__} does not name {missing}: {text[:200]}"
            return "clear", f"{type(exc).__name__}: {text[:200]}"
        except Exception as exc:  # noqa: BLE001
            return "traceback", f"{type(exc).__name__}: {str(exc)[:200]}"
    return "silent", f"accepted: {str(result)[:160]}"


def fresh(name, dataset=None):
    d = WORK / name
    if d.exists():
        shutil.rmtree(d)
    if dataset:
        shutil.copytree(PRISTINE / dataset, d / dataset, symlinks=True)
    else:
        d.mkdir(parents=True)
    return d


def write(path, text, encoding="utf-8"):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding=encoding)
    return path


GT = "video,onset,offset,type\ns15_0101,10,30,macro\ns15_0101,100,110,micro\ns16_0102,5,25,macro\n"
PRED = (
    "video,onset,offset,type,score\ns15_0101,12,30,macro,0.9\ns15_0101,100,111,micro,0.8\n"
    "s16_0102,200,230,macro,0.4\n"
)
REC = (
    "sample,subject,dataset,true,predicted\nsub01_a,sub01,casme2,negative,negative\n"
    "sub01_b,sub01,casme2,positive,surprise\nsub02_a,sub02,casme2,surprise,surprise\n"
)


def spot(pred=PRED, gt=GT, extra=(), name="spot", enc="utf-8"):
    d = fresh(name)
    p = write(d / "pred.csv", pred, enc)
    g = write(d / "gt.csv", gt, enc)
    return run_cli(["eval", "spotting", "--pred", p, "--gt", g, *extra])


def rec(text=REC, extra=(), name="rec", enc="utf-8"):
    d = fresh(name)
    p = write(d / "pred.csv", text, enc)
    return run_cli(["eval", "recognition", "--pred", p, *extra])


def ok_or_warn(rc, out, err, want_warning=None, check=None):
    """Expected: exit 0 (with a warning mentioning ``want_warning`` when given)."""
    if rc == "raised" or "Traceback" in err or "internal error" in err:
        return "traceback", err.strip().splitlines()[-1][:200]
    if rc != 0:
        return "clear", "(stricter than needed) " + err.strip()[-200:]
    if want_warning and want_warning.lower() not in err.lower():
        return "silent", f"no warning about {want_warning!r}; stdout: {out.strip()[:160]}"
    if check is not None and not check(out):
        return "silent", f"wrong result: {out.strip()[:200]}"
    return "correct", (err.strip() or out.strip())[:200]


def judge(result, names=None, want_warning=None, check=None):
    """``classify_error`` when ``names`` are given (a clear error is expected), else ``ok_or_warn``."""
    if names is not None:
        return classify_error(*result, names=names)
    return ok_or_warn(*result, want_warning=want_warning, check=check)


def register(run, rows, verdict=judge):
    """One case per row ``(name, keywords)``, in order: ``run``'s keywords (the input) and
    ``verdict``'s (``names``, ``want_warning``, ``check``, ``exc_types``: the expected
    outcome); or ``(name, function)`` for a case written out."""
    for name, kw in rows:
        if callable(kw):  # a case of its own
            case(name)(kw)
            continue
        expected = {k: kw.pop(k) for k in ("names", "want_warning", "check", "exc_types") if k in kw}
        case(name)(lambda run=run, kw=kw, expected=expected: verdict(run(**kw), **expected))


def summary(dataset, root, extra=()):
    return run_cli(["data", "summary", dataset, "--root", root, *extra])


def reported(result, found, detail, names=()):
    """``correct`` when the command exits 0 and ``found(out, err)``; else ``classify_error``."""
    rc, out, err = result
    if rc == 0 and found(out, err):
        return "correct", detail
    return classify_error(rc, out, err, names=names)


def as_nobody(argv, cache, home):
    """``python -m melib *argv`` as the unprivileged user ``nobody`` (file permissions apply)."""
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "melib"]
    env = {**os.environ, "MELIB_CACHE": str(cache), "HOME": str(home)}
    return subprocess.run([*cmd, *argv], capture_output=True, text=True, cwd=ROOT, env=env, timeout=180)


def first_video(root, dataset="casme2"):
    frames = {"casme2": "CASME2_RAW_selected", "samm": "SAMM", "casme_sq": "rawpic"}[dataset]
    subject = sorted((root / dataset / frames).iterdir())[0]
    return sorted(p for p in subject.iterdir() if p.is_dir())[0]


# =========================================================================== eval spotting


def _spot_utf_16_without_bom():
    d = fresh("spot16")
    p = write(d / "pred.csv", PRED)
    g = write(d / "gt.csv", GT.encode("utf-16-le"))
    return classify_error(*run_cli(["eval", "spotting", "--pred", p, "--gt", g]), names=("gt.csv",))


def _spot_pred_is_a_directory():
    d = fresh("spotdir")
    g = write(d / "gt.csv", GT)
    return expect_error(["eval", "spotting", "--pred", d, "--gt", g], names=(str(d),))


def _spot_gt_does_not_exist():
    d = fresh("spotnone")
    p = write(d / "pred.csv", PRED)
    return expect_error(["eval", "spotting", "--pred", p, "--gt", d / "nope.csv"], names=("nope.csv",))


def _spot_stdout_piped_to_a_closed_pipe():
    d = fresh("spotpipe")
    p, g = write(d / "p.csv", PRED), write(d / "g.csv", GT)
    cmd = (
        f"{sys.executable} -m melib eval spotting --pred {p} --gt {g} | head -c 1 >/dev/null; "
        "echo ${PIPESTATUS[0]}"
    )
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, cwd=ROOT, timeout=120)
    if "Traceback" in r.stderr or "Exception ignored" in r.stderr:
        return "traceback", r.stderr.strip().splitlines()[-1]
    return "correct", f"status {r.stdout.strip()}"


register(
    spot,
    [
        ("spot: valid files score", dict(check=lambda o: "F1" in o or "f1" in o)),
        (
            "spot: missing offset column",
            dict(gt="video,onset,type\ns1,1,macro\n", names=("gt.csv", "offset")),
        ),
        ("spot: empty pred file", dict(pred="", names=("pred.csv",))),
        ("spot: header-only pred is 'nothing spotted'", dict(pred="video,onset,offset,type,score\n")),
        ("spot: header-only gt", dict(gt="video,onset,offset,type\n")),
        ("spot: NaN onset", dict(pred=PRED + "s15_0101,nan,30,macro,0.5\n", names=("pred.csv", "line 5"))),
        ("spot: inf offset", dict(pred=PRED + "s15_0101,3,inf,macro,0.5\n", names=("line 5",))),
        (
            "spot: float-string frame 12.5",
            dict(gt=GT + "s15_0101,12.5,30,micro\n", names=("gt.csv", "line 5")),
        ),
        ("spot: float-string frame 12.0 accepted", dict(gt=GT.replace("10,30", "10.0,30.0"))),
        ("spot: onset > offset in gt", dict(gt=GT + "s15_0101,50,40,micro\n", names=("gt.csv", "line 5"))),
        ("spot: unknown type 'mikro'", dict(pred=PRED + "s15_0101,1,3,mikro,0.5\n", names=("mikro",))),
        ("spot: type in upper case with spaces", dict(gt=GT.replace("macro", " MACRO "))),
        ("spot: UTF-8 BOM header", dict(gt="\ufeff" + GT)),
        ("spot: UTF-16 file", dict(gt=GT, enc="utf-16")),
        (
            "spot: latin-1 video name warns",
            dict(gt=GT + "vidéo,1,3,micro\n", enc="latin-1", want_warning="utf-8"),
        ),
        ("spot: UTF-16 without BOM", _spot_utf_16_without_bom),
        ("spot: --pred is a directory", _spot_pred_is_a_directory),
        ("spot: --gt does not exist", _spot_gt_does_not_exist),
        ("spot: --iou 0", dict(extra=["--iou", "0"], names=("iou",))),
        ("spot: --iou nan", dict(extra=["--iou", "nan"], names=("iou",))),
        ("spot: --iou 1.5", dict(extra=["--iou", "1.5"], names=("iou",))),
        ("spot: score 'high'", dict(pred=PRED + "s15_0101,1,3,micro,high\n", names=("score", "line 5"))),
        ("spot: ragged row", dict(pred=PRED + "s15_0101,1,3\n", names=("line 5",))),
        ("spot: semicolon-separated file", dict(gt=GT.replace(",", ";"), names=("gt.csv",))),
        (
            "spot: duplicated column name in header",
            dict(gt="video,onset,offset,type,onset\ns15_0101,10,30,macro,999\n", names=("gt.csv", "onset")),
        ),
        (
            "spot: duplicated 'onset' column with plausible values",
            dict(
                gt="video,onset,offset,type,onset\ns15_0101,10,30,macro,12\n",
                names=("gt.csv", "more than once"),
            ),
        ),
        (
            "spot: video names differ only by case (partly)",
            dict(pred=PRED.replace("s16_0102", "S16_0102"), want_warning="S16_0102"),
        ),
        (
            "spot: video names differ by trailing .avi",
            dict(
                pred=PRED.replace("s15_0101,", "s15_0101.avi,").replace("s16_0102,", "s16_0102.avi,"),
                want_warning="match",
            ),
        ),
        ("spot: binary file as gt", dict(gt=bytes(range(256)) * 4, names=("gt.csv",))),
        ("spot: NUL bytes in csv", dict(gt=GT.encode() + b"s1,1,\x002,micro\n", names=("gt.csv",))),
        ("spot: empty video name", dict(gt=GT + ",1,3,micro\n", names=("line 5",))),
        (
            "spot: frame with thousands separator '1,000' quoted",
            dict(gt=GT + 's15_0101,"1,000",1100,micro\n', names=("line 5",)),
        ),
        ("spot: negative zero and plus sign '+5'", dict(gt=GT + "s15_0101,-0,+5,micro\n")),
        ("spot: exponent frame 1e400", dict(gt=GT + "s15_0101,1,1e400,micro\n", names=("line 5",))),
        ("spot: duplicate prediction rows", dict(pred=PRED + PRED.splitlines()[1] + "\n")),
        ("spot: stdout piped to a closed pipe", _spot_stdout_piped_to_a_closed_pipe),
    ],
)


# ----------------------------------------------------------------- spotting Python API


G1 = {"video": ["a"], "onset": [10], "offset": [20], "type": ["micro"]}


def _api_spot(pred, gt=G1, **kw):
    from melib.evaluation.spotting import evaluate_spotting

    return lambda: evaluate_spotting(pd.DataFrame(pred), pd.DataFrame(gt), **kw)


def _spot_api_string_frames_10_read_as_numbers():
    try:
        result = _api_spot({**G1, "onset": ["10"], "offset": ["20"], "score": [1.0]}, G1)()
    except Exception as exc:  # noqa: BLE001
        return "traceback", f"{type(exc).__name__}: {exc}"
    f1 = float(result.table.loc["overall", "F1"])
    return ("correct", "F1 = 1") if f1 == 1.0 else ("silent", f"F1 = {f1}")


def _spot_api_list_instead_of_dataframe():
    from melib.evaluation.spotting import evaluate_spotting

    return api_error(
        lambda: evaluate_spotting([(1, 2)], pd.DataFrame(G1)),
        names=("pred",),
        exc_types=(ValueError, TypeError),
    )


register(
    _api_spot,
    [
        ("spot api: float onset 10.5", dict(pred={**G1, "onset": [10.5], "score": [1.0]}, names=("onset",))),
        ("spot api: NaN offset", dict(pred={**G1, "offset": [np.nan], "score": [1.0]}, names=("offset",))),
        ("spot api: string frames '10' read as numbers", _spot_api_string_frames_10_read_as_numbers),
        (
            "spot api: missing type column",
            dict(pred={"video": ["a"], "onset": [1], "offset": [2], "score": [1]}, names=("type",)),
        ),
        ("spot api: iou_threshold=0", dict(pred={**G1, "score": [1.0]}, iou_threshold=0, names=("iou",))),
        (
            "spot api: iou_threshold=nan",
            dict(pred={**G1, "score": [1.0]}, iou_threshold=float("nan"), names=("iou",)),
        ),
        ("spot api: NaN score", dict(pred={**G1, "score": [np.nan]}, names=("score",))),
        ("spot api: video None", dict(pred={**G1, "video": [None], "score": [1.0]}, names=("video",))),
        ("spot api: list instead of DataFrame", _spot_api_list_instead_of_dataframe),
        (
            "spot api: bool frames",
            dict(pred={**G1, "onset": [True], "offset": [True], "score": [1.0]}, names=("onset",)),
        ),
    ],
    verdict=api_error,
)


# ======================================================================= eval recognition


def _rec_pred_is_a_directory():
    d = fresh("recdir")
    return expect_error(["eval", "recognition", "--pred", d], names=(str(d),))


register(
    rec,
    [
        ("rec: valid file", dict()),
        ("rec: missing predicted column", dict(text="sample,subject,true\na,s1,x\n", names=("predicted",))),
        ("rec: header only", dict(text="sample,subject,dataset,true,predicted\n", names=("pred.csv",))),
        ("rec: empty file", dict(text="", names=("pred.csv",))),
        ("rec: empty label cell", dict(text=REC + "sub02_b,sub02,casme2,,negative\n", names=("line 5",))),
        (
            "rec: case/space-only label differences",
            dict(
                text=REC.replace(",negative,negative", ", Negative ,NEGATIVE"),
                check=lambda o: "acc" in o.lower(),
            ),
        ),
        (
            "rec: conflicting duplicate sample",
            dict(text=REC + "sub01_a,sub01,casme2,negative,surprise\n", names=("line",)),
        ),
        (
            "rec: same sample listed in two subjects",
            dict(text=REC + "sub01_a,sub02,casme2,negative,negative\n", names=("sub01_a",)),
        ),
        (
            "rec: predicted label never a true label (typo 'suprise')",
            dict(text=REC + "sub02_b,sub02,casme2,negative,suprise\n", want_warning="suprise"),
        ),
        ("rec: only one class", dict(text="sample,subject,true,predicted\na,s1,neg,neg\nb,s2,neg,neg\n")),
        ("rec: UTF-16 BOM", dict(text=REC, enc="utf-16")),
        (
            "rec: latin-1 label",
            dict(text=REC + "sub02_b,sub02,casme2,négatif,négatif\n", enc="latin-1", want_warning="utf-8"),
        ),
        ("rec: --pred is a directory", _rec_pred_is_a_directory),
        (
            "rec: numeric labels 1/1.0",
            dict(text="sample,subject,true,predicted\na,s1,1,1.0\nb,s2,2,2\n", want_warning="1.0"),
        ),
        (
            "rec: --per-fold-mean with a single subject",
            dict(text="sample,subject,true,predicted\na,s1,x,x\nb,s1,y,x\n", extra=["--per-fold-mean"]),
        ),
    ],
)


def _api_rec(frame, **kw):
    from melib.evaluation.recognition import evaluate_recognition

    return lambda: evaluate_recognition(pd.DataFrame(frame), **kw)


R1 = {"sample": ["a", "b"], "subject": ["s1", "s2"], "true": ["x", "y"], "predicted": ["x", "x"]}


def _rec_api_recognition_scores_length_mismatch():
    from melib.evaluation.recognition import recognition_scores

    return api_error(lambda: recognition_scores(["a", "b"], ["a"]), names=("y_pred",))


register(
    _api_rec,
    [
        ("rec api: NaN predicted", dict(frame={**R1, "predicted": ["x", np.nan]}, names=("predicted",))),
        ("rec api: None true", dict(frame={**R1, "true": [None, "y"]}, names=("true",))),
        (
            "rec api: missing subject",
            dict(frame={k: v for k, v in R1.items() if k != "subject"}, names=("subject",)),
        ),
        ("rec api: empty frame", dict(frame={k: [] for k in R1}, names=("predictions",))),
        ("rec api: labels= missing a class present", dict(frame=R1, labels=["x"], names=("y",))),
        ("rec api: recognition_scores length mismatch", _rec_api_recognition_scores_length_mismatch),
    ],
    verdict=api_error,
)


# ============================================================================ data summary


WB = "CASME2-coding-20140508.xlsx"


def _edited(fn):
    """A workbook damage: the CASME II sheet as ``fn`` changes it."""
    return lambda wb: fn(pd.read_excel(wb)).to_excel(wb, index=False)


def _edit_casme2(name, fn):
    d = fresh(name, "casme2")
    wb = d / "casme2" / WB
    _edited(fn)(wb)
    return d, wb


def _set_cells(row, **values):
    """An edit of the CASME II sheet: cells of ``row`` set to ``values`` (functions of the
    unchanged sheet, or values)."""

    def fn(f):
        f = f.astype(object)
        new = {column: v(f) if callable(v) else v for column, v in values.items()}
        for column, value in new.items():
            f.loc[row, column] = value
        return f

    return fn


def damaged_workbook(folder, damage):
    """``data summary`` of a CASME II copy whose workbook ``damage(workbook)`` changed."""
    d = fresh(folder, "casme2")
    damage(d / "casme2" / WB)
    return summary("casme2", d / "casme2")


WRONG_SHEET = pd.DataFrame({"Subject": ["006"], "Filename": ["006_1"], "Onset": [1], "Offset": [5]})
register(
    damaged_workbook,
    [
        ("data: missing workbook", dict(folder="nowb", damage=Path.unlink, names=("CASME",))),
        ("data: 0-byte workbook", dict(folder="emptywb", damage=lambda wb: wb.write_bytes(b""))),
        (
            "data: CSV text saved as .xlsx",
            dict(folder="csvwb", damage=lambda wb: wb.write_text("Subject,Filename\n1,EP\n")),
        ),
        (
            "data: truncated workbook (zip cut)",
            dict(folder="cutwb", damage=lambda wb: wb.write_bytes(wb.read_bytes()[:600])),
        ),
        (
            "data: workbook with only an empty sheet",
            dict(
                folder="emptysheet",
                damage=lambda wb: pd.DataFrame().to_excel(wb, index=False, sheet_name="Other"),
            ),
        ),
        (
            "data: workbook with wrong sheet (samm_lv columns in casme2)",
            dict(folder="wrongsheet", damage=lambda wb: WRONG_SHEET.to_excel(wb, index=False)),
        ),
        ("data: workbook header only", dict(folder="hdronly", damage=_edited(lambda f: f.iloc[:0]))),
        (
            "data: casme2 onset > offset",
            dict(
                folder="onoff",
                damage=_edited(
                    _set_cells(
                        0,
                        OnsetFrame=lambda f: f.loc[0, "OffsetFrame"],
                        OffsetFrame=lambda f: f.loc[0, "OnsetFrame"],
                    )
                ),
                names=("row",),
            ),
        ),
        (
            "data: casme2 onset text 'abc'",
            dict(folder="ontext", damage=_edited(_set_cells(1, OnsetFrame="abc")), names=("abc",)),
        ),
        (
            "data: casme2 negative onset",
            dict(folder="onneg", damage=_edited(_set_cells(1, OnsetFrame=-5)), names=("row 3",)),
        ),
    ],
    verdict=lambda result, names=(WB,): classify_error(*result, names=names),
)


@case("data: casme2 offset beyond the video")
def _():
    def fn(f):
        f = f.astype(object)
        f.loc[0, "OffsetFrame"] = int(f.loc[0, "OffsetFrame"]) + 5000
        return f

    d, _ = _edit_casme2("offbig", fn)
    rc, out, err = summary("casme2", d / "casme2")
    if rc == 0 and (
        "beyond" in (out + err).lower() or "outside" in (out + err).lower() or "past" in (out + err).lower()
    ):
        return "correct", "reported in summary"
    return classify_error(rc, out, err, names=("row",))


@case("data: casme2 duplicated workbook row")
def _():
    d, _ = _edit_casme2("duprow", lambda f: pd.concat([f, f.iloc[[0]]], ignore_index=True))
    rc, out, err = summary("casme2", d / "casme2")
    if rc == 0 and "duplicate" not in (out + err).lower() and "repeat" not in (out + err).lower():
        return "silent", "duplicate row counted: " + out.splitlines()[2] if len(out.splitlines()) > 2 else out
    if rc == 0:
        return "correct", "flagged"
    return classify_error(rc, out, err)


@case("data: casme2 row for a clip whose folder is missing")
def _():
    d = fresh("noclip", "casme2")
    shutil.rmtree(first_video(d))
    rc, out, err = summary("casme2", d / "casme2")
    if rc == 0 and "6 annotated, 5 with frames" in out:
        return "correct", "reported as annotated without frames"
    return ok_or_warn(rc, out, err, want_warning="frames")


def folder_made_a_file(name, folder_of, text, found, detail):
    """``data summary`` once the folder ``folder_of(copy)`` of a CASME II copy is a file
    holding ``text``: ``correct`` when it exits 0 and ``found(out, err)``."""
    d = fresh(name, "casme2")
    f = folder_of(d)
    shutil.rmtree(f)
    f.write_text(text)
    return reported(summary("casme2", d / "casme2"), found, detail, (f.name,))


register(
    folder_made_a_file,
    [
        (
            "data: a video folder replaced by a file",
            dict(
                name="vidfile",
                folder_of=first_video,
                text="not a folder",
                found=lambda out, err: "5 with frames" in out,
                detail="treated as missing",
            ),
        ),
        (
            "data: frames folder (CASME2_RAW_selected) is a file",
            dict(
                name="framesfile",
                folder_of=lambda d: d / "casme2" / "CASME2_RAW_selected",
                text="x",
                found=lambda out, err: "no video folders" in out,
                detail="reported in the summary",
            ),
        ),
    ],
    verdict=lambda result: result,
)


@case("data: symlink loop inside a subject folder")
def _():
    d = fresh("loop", "casme2")
    v = first_video(d)
    os.symlink(v.parent, v.parent / "loop")
    rc, out, err = summary("casme2", d / "casme2")
    return ok_or_warn(rc, out, err)


@case("data: self-referencing symlink as a video folder")
def _():
    d = fresh("selflink", "casme2")
    v = first_video(d)
    bad = v.parent / "EP99_99"
    os.symlink(bad, bad)
    return reported(summary("casme2", d / "casme2"), lambda out, err: True, "ignored", ("EP99_99",))


def frames_still_counted(name, change):
    """``data summary`` after ``change(video)`` to a video folder of a CASME II copy still
    counts its 392 frames."""
    d = fresh(name, "casme2")
    change(first_video(d))
    return ok_or_warn(*summary("casme2", d / "casme2"), check=lambda o: "392 frames" in o)


def _junk_files(v):
    for n in ("Thumbs.db", ".DS_Store", "notes.txt"):
        (v / n).write_bytes(b"junk")


case("data: non-image files in a video folder (Thumbs.db, .DS_Store, notes.txt)")(
    lambda: frames_still_counted("junk", _junk_files)
)


@case("data: zero-byte JPEG read via API")
def _():
    from melib.data.datasets import CorruptFrameError, load_dataset

    d = fresh("zerojpg", "casme2")
    v = first_video(d)
    f = sorted(v.iterdir())[3]
    f.write_bytes(b"")

    def go():
        ds = load_dataset("casme2", d / "casme2")
        row = ds.videos[ds.videos["path"].astype(str) == str(v)].iloc[0]
        return [ds.read_frame(row["video"], i) for i in range(row["n_frames"])]

    return api_error(go, names=(f.name,), exc_types=(CorruptFrameError,))


def _mixed_suffixes(v):
    files = sorted(v.iterdir())
    files[0].rename(files[0].with_suffix(".JPG"))
    import cv2

    img = cv2.imread(str(files[1]))
    files[1].unlink()
    cv2.imwrite(str(files[1].with_suffix(".bmp")), img)


case("data: uppercase .JPG suffix and mixed .bmp")(lambda: frames_still_counted("mixsuffix", _mixed_suffixes))


@case("data: same number as .jpg and .bmp (different bytes)")
def _():
    d = fresh("jpgbmp", "casme2")
    v = first_video(d)
    f = sorted(v.iterdir())[2]
    import cv2

    cv2.imwrite(str(f.with_suffix(".bmp")), cv2.imread(str(f)))
    return reported(summary("casme2", d / "casme2"), lambda out, err: f.stem in out, "reported", (f.stem,))


def _sub_folder(v):
    (v / "extra").mkdir()
    shutil.copy(sorted(v.glob("*.jpg"))[0], v / "extra")


case("data: a sub-folder inside a video folder")(lambda: frames_still_counted("subsub", _sub_folder))


@case("data: unreadable video folder (as nobody)")
def _():
    d = fresh("unread", "casme2")
    v = first_video(d)
    os.chmod(d, 0o755)
    for p in [WORK, d, *d.rglob("*")]:
        if p.is_dir():
            os.chmod(p, 0o755)
    os.chmod(v, 0o000)
    r = as_nobody(["data", "summary", "casme2", "--root", str(d / "casme2")], WORK / "nobody-cache", WORK)
    os.chmod(v, 0o755)
    return classify_error(r.returncode, r.stdout, r.stderr, names=(v.name,))


@case("data: permission error via API (monkeypatched scandir)")
def _():
    from melib.data import datasets

    d = fresh("permapi", "casme2")
    v = first_video(d)
    real = os.scandir

    def fake(path="."):
        if Path(path) == v:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    datasets.os.scandir = fake
    try:
        return classify_error(*summary("casme2", d / "casme2"), names=(v.name,))
    finally:
        datasets.os.scandir = real


@case("data: --root is the data root")
def _():
    return expect_error(["data", "summary", "casme2", "--root", PRISTINE], names=("casme2",))


@case("data: --root is a file")
def _():
    d = fresh("rootfile")
    f = write(d / "f.txt", "x")
    return expect_error(["data", "summary", "samm", "--root", f], names=("f.txt",))


@case("data: --root is an empty folder")
def _():
    d = fresh("rootempty")
    return expect_error(["data", "summary", "samm", "--root", d], names=(str(d),))


@case("data: smic_hs root without any clip")
def _():
    d = fresh("smicempty")
    (d / "SMIC" / "HS").mkdir(parents=True)
    rc, out, err = summary("smic_hs", d)
    if rc == 0 and "expressions: 0" in out:
        return "silent", "empty dataset reported with exit 0 and no warning"
    return classify_error(rc, out, err, names=("SMIC",))


@case("data: megc2019 root missing samm")
def _():
    d = fresh("megc")
    for k in ("casme2", "smic_hs"):
        shutil.copytree(PRISTINE / k, d / k)
    return expect_error(["data", "summary", "megc2019", "--root", d], names=("samm",))


@case("data: casme_sq workbook with extra sheet content (text in frame column)")
def _():
    d = fresh("sqtext", "casme_sq")
    wb = next((d / "casme_sq").glob("*.xlsx"))
    sheets = pd.read_excel(wb, sheet_name=None, header=None)
    first = next(iter(sheets))
    sheets[first] = sheets[first].astype(object)
    sheets[first].iloc[0, 2] = "twelve"
    with pd.ExcelWriter(wb) as w:
        for name, sh in sheets.items():
            sh.to_excel(w, sheet_name=name, header=False, index=False)
    return classify_error(*summary("casme_sq", d / "casme_sq"), names=("twelve",))


@case("data: frame file with digits only in the folder name ('cover.jpg')")
def _():
    d = fresh("cover", "casme2")
    v = first_video(d)
    shutil.copy(sorted(v.glob("*.jpg"))[0], v / "cover.jpg")
    return reported(
        summary("casme2", d / "casme2"), lambda out, err: "cover.jpg" in out + err, "reported", ("cover.jpg",)
    )


@case("data: --json on a damaged tree")
def _():
    d = fresh("jsongap", "casme2")
    v = first_video(d)
    sorted(v.glob("*.jpg"))[5].unlink()
    rc, out, err = summary("casme2", d / "casme2", ["--json"])
    if rc != 0:
        return classify_error(rc, out, err)
    try:
        data = json.loads(out)
    except ValueError:
        return "traceback", "not valid JSON"
    return (
        ("correct", "gap in JSON")
        if "gap" in out.lower() or "missing" in out.lower()
        else (
            "silent",
            f"no problem in JSON keys {list(data)[:8]}",
        )
    )


@case("data api: load_from_data_root unknown dataset")
def _():
    from melib.data.datasets import load_from_data_root

    return api_error(lambda: load_from_data_root("casme3", PRISTINE), names=("casme3",))


@case("data api: load_dataset fractional='ceil'")
def _():
    from melib.data.datasets import load_dataset

    return api_error(
        lambda: load_dataset("samm_lv", PRISTINE / "samm_lv", fractional="ceil"), names=("fractional",)
    )


@case("data api: load_from_data_root with data_root None")
def _():
    from melib.data.datasets import load_from_data_root

    return api_error(
        lambda: load_from_data_root("casme2", None),
        names=("data_root",),
        exc_types=(ValueError, OSError, TypeError),
    )


@case("data api: frame index out of range")
def _():
    from melib.data.datasets import load_dataset

    ds = load_dataset("casme2", PRISTINE / "casme2")
    video = ds.videos.iloc[0]["video"]
    return api_error(
        lambda: ds.read_frame(video, 10_000), names=(str(video),), exc_types=(ValueError, IndexError)
    )


@case("data api: frame index below -n")
def _():
    from melib.data.datasets import load_dataset

    ds = load_dataset("casme2", PRISTINE / "casme2")
    video = ds.videos.iloc[0]["video"]
    return api_error(
        lambda: ds.read_frame(video, -10_000), names=(str(video),), exc_types=(ValueError, IndexError)
    )


@case("data api: unknown video name")
def _():
    from melib.data.datasets import load_dataset

    ds = load_dataset("casme2", PRISTINE / "casme2")
    return api_error(
        lambda: ds.read_frame("nope_video", 0), names=("nope_video",), exc_types=(ValueError, KeyError)
    )


# ================================================================================== synth


@case("synth: unknown --datasets name")
def _():
    d = fresh("syn-unknown")
    return expect_error(["synth", "tiny", "--out", d, "--datasets", "casme3"], names=("casme3",))


@case("synth: --datasets megc2019")
def _():
    d = fresh("syn-megc")
    return expect_error(["synth", "tiny", "--out", d, "--datasets", "megc2019"], names=("megc2019",))


@case("synth: --out on a real-looking tree (no manifest) keeps the data")
def _():
    d = fresh("syn-real", "casme2")
    (d / "casme2" / "synth_manifest.json").unlink()
    before = sorted(p.relative_to(d) for p in d.rglob("*"))
    r = run_cli(["synth", "tiny", "--out", d, "--datasets", "casme2"])
    after = sorted(p.relative_to(d) for p in d.rglob("*"))
    if before != after:
        return "dataloss", f"{len(before)} -> {len(after)} paths"
    return classify_error(*r, names=("casme2",))


@case("synth: --out where the manifest is a folder")
def _():
    d = fresh("syn-mdir", "casme2")
    (d / "casme2" / "synth_manifest.json").unlink()
    (d / "casme2" / "synth_manifest.json").mkdir()
    before = len(list(d.rglob("*")))
    r = run_cli(["synth", "tiny", "--out", d, "--datasets", "casme2"])
    if len(list(d.rglob("*"))) < before - 10:
        return "dataloss", "folder replaced"
    return classify_error(*r, names=("casme2",))


@case("synth: --out is a symlink to a real tree")
def _():
    d = fresh("syn-link", "samm")
    (d / "samm" / "synth_manifest.json").unlink()
    link = WORK / "syn-link-alias"
    if link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(d)
    before = len(list(d.rglob("*")))
    r = run_cli(["synth", "tiny", "--out", link, "--datasets", "samm"])
    if len(list(d.rglob("*"))) != before:
        return "dataloss", "tree changed"
    return classify_error(*r, names=("samm",))


@case("synth: user file added inside a synthetic dataset folder")
def _():
    d = fresh("syn-userfile", "casme2")
    mine = write(d / "casme2" / "my_notes.txt", "precious")
    r = run_cli(["synth", "tiny", "--out", d, "--datasets", "casme2"])
    kept = d / "casme2.kept-files" / "my_notes.txt"
    if not mine.exists() and not kept.exists():
        return "dataloss", "my_notes.txt deleted silently" + (f" (rc={r[0]})")
    if kept.exists() and kept.read_text() == "precious":
        return ok_or_warn(*r, want_warning="kept-files")
    return ok_or_warn(*r)


@case("synth: --out is a file")
def _():
    d = fresh("syn-file")
    f = write(d / "f", "x")
    return expect_error(["synth", "tiny", "--out", f], names=("f",))


@case("synth: --out under a read-only folder (as nobody)")
def _():
    d = fresh("syn-ro")
    os.chmod(WORK, 0o755)
    os.chmod(d, 0o555)
    r = as_nobody(["synth", "tiny", "--out", str(d / "corpus"), "--datasets", "smic_hs"], d / "cache", "/tmp")
    os.chmod(d, 0o755)
    return classify_error(r.returncode, r.stdout, r.stderr, names=(str(d),))


@case("synth: --seed -1")
def _():
    d = fresh("syn-seed")
    result = run_cli(["synth", "tiny", "--out", d, "--seed", "-1", "--datasets", "smic_hs"])
    return reported(result, lambda out, err: True, "negative seed accepted", ("seed",))


@case("synth: --seed 2**70")
def _():
    d = fresh("syn-seedbig")
    result = run_cli(["synth", "tiny", "--out", d, "--seed", str(2**70), "--datasets", "smic_hs"])
    return reported(result, lambda out, err: True, "accepted", ("seed",))


@case("synth: --faces is a file")
def _():
    d = fresh("syn-faces")
    f = write(d / "face.txt", "x")
    return expect_error(
        ["synth", "tiny", "--out", d / "o", "--faces", f, "--datasets", "smic_hs"], names=("face.txt",)
    )


@case("synth: --faces folder with a broken image")
def _():
    d = fresh("syn-faces2")
    write(d / "faces" / "a.jpg", b"\xff\xd8\xff\xe0broken")
    return expect_error(
        ["synth", "tiny", "--out", d / "o", "--faces", d / "faces", "--datasets", "smic_hs"], names=("a.jpg",)
    )


def interrupted_synth(folder, extra, delay, sig, stderr=subprocess.DEVNULL):
    """``melib synth tiny`` into ``<folder>/corpus`` (``extra`` arguments), sent ``sig`` after
    ``delay`` seconds. Returns the folder, the environment, the command (without ``extra``)
    and the process."""
    d = fresh(folder)
    env = {**os.environ, "MELIB_CACHE": str(d / "cache")}
    cmd = [sys.executable, "-m", "melib", "synth", "tiny", "--out", str(d / "corpus")]
    p = subprocess.Popen(cmd + extra, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr, text=True)
    time.sleep(delay)
    p.send_signal(sig)
    return d, env, cmd, p


@case("synth: SIGKILL mid-run then rerun leaves nothing behind")
def _():
    d, env, cmd, p = interrupted_synth("syn-kill", [], 4.0, signal.SIGKILL)
    p.wait()
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        return classify_error(r.returncode, r.stdout, r.stderr)
    extra = [
        str(p.relative_to(d))
        for p in d.rglob("*")
        if p.name.startswith(".") or p.name.endswith((".tmp", ".lock", ".partial"))
    ]
    if extra:
        return "leftover", ", ".join(extra[:5])
    return "correct", "clean after rerun"


@case("synth: SIGKILL then rerun with another --datasets")
def _():
    d, env, cmd, p = interrupted_synth("syn-kill2", ["--datasets", "samm_lv"], 3.5, signal.SIGKILL)
    out = d / "corpus"
    p.wait()
    r = subprocess.run(
        cmd + ["--datasets", "smic_hs"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    if r.returncode != 0:
        return classify_error(r.returncode, r.stdout, r.stderr)
    extra = [str(p.relative_to(d)) for p in out.rglob("*") if p.name.startswith(".") or "tmp" in p.name]
    if extra:
        return "leftover", ", ".join(extra[:5])
    return "correct", "clean"


@case("synth: SIGTERM mid-run")
def _():
    d, _, _, p = interrupted_synth(
        "syn-term", ["--datasets", "samm_lv"], 3.5, signal.SIGTERM, stderr=subprocess.PIPE
    )
    _, err = p.communicate()
    extra = [str(x.relative_to(d)) for x in d.rglob("*") if x.name.startswith(".")]
    if "Traceback" in err:
        return "traceback", err.strip().splitlines()[-1]
    if extra:
        return "leftover", "after SIGTERM (before any rerun): " + ", ".join(extra[:4])
    return "correct", f"rc={p.returncode}"


# =============================================================================== reproduce


def reproduce(argv):
    from melib import reproduce as rep

    calls = []
    real = rep.execute_one

    def stub(source, output, parameters, timeout, failed_dir):
        calls.append(source.stem)
        return rep.RunResult(source.stem, "ok", 0.0, output=output)

    rep.execute_one = stub
    try:
        rc, out, err = run_cli(["reproduce", "--no-book", "--profile", "smoke", *argv])
    finally:
        rep.execute_one = real
    return rc, out, err, calls


def expect_reproduce_error(argv, names=()):
    rc, out, err, calls = reproduce(argv)
    if calls and rc == 0:
        return "silent", f"ran {calls[:3]} with {argv}"
    return classify_error(rc, out, err, names)


def _reproduce_p_epochs_negative():
    rc, out, err, calls = reproduce(["--only", "03", "-p", "epochs=-1"])
    if calls:
        return "silent", "bad value reaches the notebook (fails only after papermill starts)"
    return classify_error(rc, out, err, names=("epochs",))


def _reproduce_p_profile_smoke_with_profile_smoke():
    rc, out, err, calls = reproduce(["--only", "03", "-p", "profile=smoke", "--out", fresh("rep-ok")])
    return ok_or_warn(rc, out, err)


def at_run(argv):
    """``argv`` with its functions called: the paths a case makes when it runs."""
    return [a() if callable(a) else a for a in argv]


def _file(folder, name, below=""):
    """An argument: the file ``<folder>/<name>`` (written when the case runs), or a path below it."""
    return lambda: write(fresh(folder) / name, "x") / below


register(
    at_run,
    [
        ("reproduce: -p epochs=-1 (negative)", _reproduce_p_epochs_negative),
        ("reproduce: -p seed=1.5", dict(argv=["--only", "03", "-p", "seed=1.5"], names=("seed",))),
        ("reproduce: -p seed=true", dict(argv=["--only", "03", "-p", "seed=true"], names=("seed",))),
        ("reproduce: -p seed=-3", dict(argv=["--only", "03", "-p", "seed=-3"], names=("seed",))),
        ("reproduce: -p with empty key '=3'", dict(argv=["--only", "03", "-p", "=3"], names=("=3",))),
        ("reproduce: -p without '=' ", dict(argv=["--only", "03", "-p", "seed"], names=("seed",))),
        (
            "reproduce: -p typo 'thresold=0.5'",
            dict(argv=["--only", "03", "-p", "thresold=0.5"], names=("threshold",)),
        ),
        (
            "reproduce: -p same key twice with different values",
            dict(argv=["--only", "03", "-p", "seed=1", "-p", "seed=2"], names=("seed",)),
        ),
        (
            "reproduce: -p unbalanced YAML '[1,2'",
            dict(argv=["--only", "03", "-p", "datasets=[1,2"], names=("datasets",)),
        ),
        (
            "reproduce: -p profile=smoke with --profile smoke (no conflict)",
            _reproduce_p_profile_smoke_with_profile_smoke,
        ),
        (
            "reproduce: -p profile=SMOKE (case)",
            dict(argv=["--only", "03", "-p", "profile=SMOKE"], names=("profile",)),
        ),
        ("reproduce: --only unknown name", dict(argv=["--only", "99_nope"], names=("99_nope",))),
        ("reproduce: --only ambiguous prefix '0'", dict(argv=["--only", "0"], names=("ambiguous",))),
        ("reproduce: --only empty string", dict(argv=["--only", ""], names=("only",))),
        (
            "reproduce: --out is a file",
            dict(argv=["--only", "03", "--out", _file("rep-file", "out.txt")], names=("out.txt",)),
        ),
        (
            "reproduce: --out under a file",
            dict(argv=["--only", "03", "--out", _file("rep-file2", "out.txt", "sub")], names=("out.txt",)),
        ),
        (
            "reproduce: --data-root is a file",
            dict(argv=["--only", "03", "--data-root", _file("rep-dr", "dr.txt")], names=("dr.txt",)),
        ),
        (
            "reproduce: --data-root empty folder",
            dict(
                argv=[
                    "--only",
                    "03",
                    "--data-root",
                    lambda: fresh("rep-drempty"),
                    "--out",
                    lambda: fresh("rep-o2"),
                ],
                names=(str(WORK / "rep-drempty"),),
            ),
        ),
        (
            "reproduce: --timeout 0",
            dict(
                argv=["--only", "03", "--timeout", "0", "--out", lambda: fresh("rep-o3")], names=("timeout",)
            ),
        ),
        (
            "reproduce: --timeout -5",
            dict(
                argv=["--only", "03", "--timeout", "-5", "--out", lambda: fresh("rep-o4")], names=("timeout",)
            ),
        ),
        (
            "reproduce: -p data_root=123 (number)",
            dict(argv=["--only", "03", "-p", "data_root=123"], names=("data_root",)),
        ),
        (
            "reproduce: -p lr=abc where default is None",
            dict(argv=["--only", "03", "-p", "lr=abc", "--out", lambda: fresh("rep-o5")], names=("lr",)),
        ),
    ],
    verdict=expect_reproduce_error,
)


# =============================================================================== configure


def conf(paper, names=(), **kw):
    import importlib

    mod = importlib.import_module(f"melib.pipelines.{paper}")
    kw = {"profile": "smoke", **kw}
    return api_error(lambda: mod.configure(**kw), names=names or tuple(kw)[1:] or ("profile",))


BAD_COMMON = [
    ("seed", -1),
    ("seed", "abc"),
    ("seed", True),
    ("seed", float("nan")),
    ("profile", "Smoke"),
    ("device", 0),
    ("limit_steps", 0),
    ("epochs", -1),
    ("epochs", 0),
    ("epochs", 2.5),
    ("epochs", "3"),
    ("epochs", [3]),
    ("epochs", True),
    ("epochs", float("inf")),
    ("max_folds", 1),
    ("max_folds", "al"),
    ("lr", -1e-3),
    ("lr", 0),
    ("lr", float("nan")),
    ("lr", "1e-3"),
    ("batch_size", 0),
    ("batch_size", 1.5),
]

for _paper in ("softnet", "lbcnn", "dyngeonet", "cropnet", "bai"):
    for _field, _value in BAD_COMMON:

        def _make(paper=_paper, field=_field, value=_value):
            return lambda: conf(paper, **{field: value})

        case(f"configure {_paper}: {_field}={_value!r}")(_make())

SPECIFIC = [
    ("softnet", {"threshold": 1.5}),
    ("softnet", {"threshold": float("nan")}),
    ("softnet", {"k": -1}),
    ("softnet", {"k": {"mikro": 6}}),
    ("softnet", {"k": {"micro": 0}}),
    ("softnet", {"expression": "micros"}),
    ("softnet", {"tvl1": {"nscale": 3}}),
    ("softnet", {"tvl1": "fastest"}),
    ("softnet", {"tvl1": {"nscales": -3}}),
    ("softnet", {"negative_keep": 2.0}),
    ("softnet", {"noise_std": -1}),
    ("softnet", {"crop_size": 7}),
    ("softnet", {"workers": -1}),
    ("softnet", {"datasets": "casme"}),
    ("softnet", {"datasets": []}),
    ("softnet", {"augment": "yes"}),
    ("lbcnn", {"dropout": 1.5}),
    ("lbcnn", {"streams": 0}),
    ("lbcnn", {"trunk": "resnet"}),
    ("lbcnn", {"neutral_gap_s": -0.5}),
    ("lbcnn", {"min_run_length": 0}),
    ("lbcnn", {"channels": [-4, 8]}),
    ("lbcnn", {"input_size": 0}),
    ("dyngeonet", {"L": 0}),
    ("dyngeonet", {"stride": -2}),
    ("dyngeonet", {"positive_iou": 2}),
    ("dyngeonet", {"momentum": 1.5}),
    ("dyngeonet", {"branch": "fusionn"}),
    ("dyngeonet", {"ablations": ["nope"]}),
    ("dyngeonet", {"threshold": -0.1}),
    ("cropnet", {"n_key": 0}),
    ("cropnet", {"alpha": -1}),
    ("cropnet", {"label_smoothing": 1.2}),
    ("cropnet", {"protocol": "casme3"}),
    ("cropnet", {"input_size": -8}),
    ("bai", {"n_frames": 0}),
    ("bai", {"low_hz": 20.0, "high_hz": 12.0}),
    ("bai", {"alpha": float("nan")}),
    ("bai", {"fc": (512, -1)}),
    ("bai", {"hidden": 0}),
    ("bai", {"dataset": "casme_sq"}),
    ("bai", {"decoder_epochs": -1}),
    ("bai", {"weights_path": "/nonexistent/weights.pt"}),
]

for _paper, _kw in SPECIFIC:

    def _make2(paper=_paper, kw=_kw):
        return lambda: conf(paper, **kw)

    case(f"configure {_paper}: {_kw}")(_make2())


@case("configure softnet: data_root is a file")
def _():
    f = write(fresh("cf-file") / "root.txt", "x")
    return conf("softnet", names=("data_root",), data_root=str(f))


@case("configure softnet: data_root is an empty folder")
def _():
    d = fresh("cf-empty")
    from melib.pipelines import softnet

    def go():
        setup = softnet.configure(profile="smoke", data_root=str(d))
        return setup

    kind, detail = api_error(go, names=("data_root",))
    return kind, detail


@case("configure cropnet: data_root without casme2")
def _():
    d = fresh("cf-nocasme2")
    shutil.copytree(PRISTINE / "samm", d / "samm")
    return conf("cropnet", names=("casme2",), data_root=str(d))


# ================================================================================== caches


def _cache_case(kind, damage):
    from melib import runtime

    d = fresh(f"cache-{kind}-{damage}")
    target = d / f"entry.{kind}"
    arr = np.arange(1000, dtype=np.float32).reshape(10, 100)
    if kind == "npy":
        runtime.save_npy(target, arr)
        load = runtime.load_npy
    elif kind == "npz":
        runtime.save_npz(target, a=arr)
        load = runtime.load_npz
    else:
        import torch

        runtime.save_torch(target, {"w": torch.ones(3)})
        load = runtime.load_torch
    raw = target.read_bytes()
    if damage == "truncate":
        target.write_bytes(raw[: len(raw) // 2])
    elif damage == "zero":
        target.write_bytes(b"")
    elif damage == "flip":  # same size, one byte changed in the data
        b = bytearray(raw)
        b[-20] ^= 0xFF
        target.write_bytes(bytes(b))
    elif damage == "dir":
        target.unlink()
        target.mkdir()
    elif damage == "record":
        rec = runtime.check_record_path(target)
        rec.write_text("{not json")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            problem = runtime.cache_problem(target)
    except Exception as exc:  # noqa: BLE001
        return "traceback", f"cache_problem raised {type(exc).__name__}: {exc}"
    if damage == "record":
        if problem is None:
            try:
                load(target)
                return "correct", "record rewritten / data intact"
            except Exception as exc:  # noqa: BLE001
                return "traceback", f"{type(exc).__name__}: {exc}"
        return "correct", f"flagged: {problem[:120]}"
    if problem is None:
        return "silent", "damage not detected by cache_problem"
    try:
        load(target)
    except (ValueError, OSError) as exc:
        if str(target.name) in str(exc):
            return "clear", f"{type(exc).__name__}: {str(exc)[:160]}"
        return "traceback", f"load names no file: {exc}"
    except Exception as exc:  # noqa: BLE001
        return "traceback", f"{type(exc).__name__}: {exc}"
    return "silent", "load returned damaged data"


for _kind in ("npy", "npz", "pt"):
    for _damage in ("truncate", "zero", "flip", "dir", "record"):
        case(f"cache {_kind}: {_damage}")(lambda k=_kind, dm=_damage: _cache_case(k, dm))


def damaged_cached_corpus(cache_name, damage, quiet=False, **load):
    """A cached ``tiny`` corpus damaged by ``damage(root)``: asked for again, it must be
    regenerated (its CASME II loads with ``load``)."""
    from melib.data import synth

    cache = WORK / cache_name
    if cache.exists():
        shutil.rmtree(cache)
    old = os.environ["MELIB_CACHE"]
    os.environ["MELIB_CACHE"] = str(cache)
    try:
        damage(synth.ensure_corpus("tiny", 0, progress=False))
        with warnings.catch_warnings() if quiet else contextlib.nullcontext():
            if quiet:
                warnings.simplefilter("ignore")
            root2 = synth.ensure_corpus("tiny", 0, progress=False)
        from melib.data.datasets import load_dataset

        try:
            load_dataset("casme2", root2 / "casme2", **load)
        except Exception as exc:  # noqa: BLE001
            return "silent", f"damaged cached corpus reused: {type(exc).__name__}: {str(exc)[:140]}"
        return "correct", "regenerated"
    finally:
        os.environ["MELIB_CACHE"] = old


def _cut_workbook(root):
    wb = root / "casme2" / "CASME2-coding-20140508.xlsx"
    wb.write_bytes(wb.read_bytes()[:100])


register(
    damaged_cached_corpus,
    [
        (
            "cache: synth corpus cache with a damaged workbook is regenerated",
            dict(cache_name="ens-cache", damage=_cut_workbook, quiet=True, require_frames=False),
        ),
        (
            "cache: synth corpus cache with a deleted frame is regenerated",
            dict(
                cache_name="ens-cache2",
                damage=lambda root: sorted((root / "casme2").rglob("*.jpg"))[7].unlink(),
            ),
        ),
    ],
    verdict=lambda result: result,
)


# ===================================================================================== main


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    if not PRISTINE.is_dir():
        subprocess.run(
            [sys.executable, "-m", "melib", "synth", "tiny", "--out", str(PRISTINE)], cwd=ROOT, check=True
        )
    results = []
    for name, fn in CASES:
        if args.only and args.only not in name:
            continue
        if args.list:
            print(name)
            continue
        start = time.perf_counter()
        try:
            kind, detail = fn()
        except Exception as exc:  # noqa: BLE001 - the probe itself
            kind, detail = "probe-error", f"{type(exc).__name__}: {exc}"
        results.append(
            {"case": name, "class": kind, "detail": detail, "s": round(time.perf_counter() - start, 1)}
        )
        detail = " / ".join(line.strip() for line in str(detail).splitlines() if line.strip())
        results[-1]["detail"] = detail
        print(f"{kind:10s} {name}  | {detail[:230]}", flush=True)
    counts = pd.Series([r["class"] for r in results]).value_counts().to_dict() if results else {}
    print("\ncounts:", counts, "of", len(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"counts": counts, "results": results}, indent=1))
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
