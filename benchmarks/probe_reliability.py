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


def summary(dataset, root, extra=()):
    return run_cli(["data", "summary", dataset, "--root", root, *extra])


def first_video(root, dataset="casme2"):
    frames = {"casme2": "CASME2_RAW_selected", "samm": "SAMM", "casme_sq": "rawpic"}[dataset]
    subject = sorted((root / dataset / frames).iterdir())[0]
    return sorted(p for p in subject.iterdir() if p.is_dir())[0]


# =========================================================================== eval spotting


@case("spot: valid files score")
def _():
    return ok_or_warn(*spot(), check=lambda o: "F1" in o or "f1" in o)


@case("spot: missing offset column")
def _():
    return classify_error(*spot(gt="video,onset,type\ns1,1,macro\n"), names=("gt.csv", "offset"))


@case("spot: empty pred file")
def _():
    return classify_error(*spot(pred=""), names=("pred.csv",))


@case("spot: header-only pred is 'nothing spotted'")
def _():
    return ok_or_warn(*spot(pred="video,onset,offset,type,score\n"))


@case("spot: header-only gt")
def _():
    return ok_or_warn(*spot(gt="video,onset,offset,type\n"))


@case("spot: NaN onset")
def _():
    return classify_error(*spot(pred=PRED + "s15_0101,nan,30,macro,0.5\n"), names=("pred.csv", "line 5"))


@case("spot: inf offset")
def _():
    return classify_error(*spot(pred=PRED + "s15_0101,3,inf,macro,0.5\n"), names=("line 5",))


@case("spot: float-string frame 12.5")
def _():
    return classify_error(*spot(gt=GT + "s15_0101,12.5,30,micro\n"), names=("gt.csv", "line 5"))


@case("spot: float-string frame 12.0 accepted")
def _():
    return ok_or_warn(*spot(gt=GT.replace("10,30", "10.0,30.0")))


@case("spot: onset > offset in gt")
def _():
    return classify_error(*spot(gt=GT + "s15_0101,50,40,micro\n"), names=("gt.csv", "line 5"))


@case("spot: unknown type 'mikro'")
def _():
    return classify_error(*spot(pred=PRED + "s15_0101,1,3,mikro,0.5\n"), names=("mikro",))


@case("spot: type in upper case with spaces")
def _():
    return ok_or_warn(*spot(gt=GT.replace("macro", " MACRO ")))


@case("spot: UTF-8 BOM header")
def _():
    return ok_or_warn(*spot(gt="\ufeff" + GT))


@case("spot: UTF-16 file")
def _():
    return ok_or_warn(*spot(gt=GT, enc="utf-16"))


@case("spot: latin-1 video name warns")
def _():
    return ok_or_warn(*spot(gt=GT + "vidéo,1,3,micro\n", enc="latin-1"), want_warning="utf-8")


@case("spot: UTF-16 without BOM")
def _():
    d = fresh("spot16")
    p = write(d / "pred.csv", PRED)
    g = write(d / "gt.csv", GT.encode("utf-16-le"))
    return classify_error(*run_cli(["eval", "spotting", "--pred", p, "--gt", g]), names=("gt.csv",))


@case("spot: --pred is a directory")
def _():
    d = fresh("spotdir")
    g = write(d / "gt.csv", GT)
    return expect_error(["eval", "spotting", "--pred", d, "--gt", g], names=(str(d),))


@case("spot: --gt does not exist")
def _():
    d = fresh("spotnone")
    p = write(d / "pred.csv", PRED)
    return expect_error(["eval", "spotting", "--pred", p, "--gt", d / "nope.csv"], names=("nope.csv",))


@case("spot: --iou 0")
def _():
    return classify_error(*spot(extra=["--iou", "0"]), names=("iou",))


@case("spot: --iou nan")
def _():
    return classify_error(*spot(extra=["--iou", "nan"]), names=("iou",))


@case("spot: --iou 1.5")
def _():
    return classify_error(*spot(extra=["--iou", "1.5"]), names=("iou",))


@case("spot: score 'high'")
def _():
    return classify_error(*spot(pred=PRED + "s15_0101,1,3,micro,high\n"), names=("score", "line 5"))


@case("spot: ragged row")
def _():
    return classify_error(*spot(pred=PRED + "s15_0101,1,3\n"), names=("line 5",))


@case("spot: semicolon-separated file")
def _():
    return classify_error(*spot(gt=GT.replace(",", ";")), names=("gt.csv",))


@case("spot: duplicated column name in header")
def _():
    gt = "video,onset,offset,type,onset\ns15_0101,10,30,macro,999\n"
    return classify_error(*spot(gt=gt), names=("gt.csv", "onset"))


@case("spot: duplicated 'onset' column with plausible values")
def _():
    gt = "video,onset,offset,type,onset\ns15_0101,10,30,macro,12\n"
    return classify_error(*spot(gt=gt), names=("gt.csv", "more than once"))


@case("spot: video names differ only by case (partly)")
def _():
    pred = PRED.replace("s16_0102", "S16_0102")
    return ok_or_warn(*spot(pred=pred), want_warning="S16_0102")


@case("spot: video names differ by trailing .avi")
def _():
    pred = PRED.replace("s15_0101,", "s15_0101.avi,").replace("s16_0102,", "s16_0102.avi,")
    return ok_or_warn(*spot(pred=pred), want_warning="match")


@case("spot: binary file as gt")
def _():
    return classify_error(*spot(gt=bytes(range(256)) * 4), names=("gt.csv",))


@case("spot: NUL bytes in csv")
def _():
    return classify_error(*spot(gt=GT.encode() + b"s1,1,\x002,micro\n"), names=("gt.csv",))


@case("spot: empty video name")
def _():
    return classify_error(*spot(gt=GT + ",1,3,micro\n"), names=("line 5",))


@case("spot: frame with thousands separator '1,000' quoted")
def _():
    return classify_error(*spot(gt=GT + 's15_0101,"1,000",1100,micro\n'), names=("line 5",))


@case("spot: negative zero and plus sign '+5'")
def _():
    return ok_or_warn(*spot(gt=GT + "s15_0101,-0,+5,micro\n"))


@case("spot: exponent frame 1e400")
def _():
    return classify_error(*spot(gt=GT + "s15_0101,1,1e400,micro\n"), names=("line 5",))


@case("spot: duplicate prediction rows")
def _():
    return ok_or_warn(*spot(pred=PRED + PRED.splitlines()[1] + "\n"))


@case("spot: stdout piped to a closed pipe")
def _():
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


# ----------------------------------------------------------------- spotting Python API


def _api_spot(pred, gt, **kw):
    from melib.evaluation.spotting import evaluate_spotting

    return lambda: evaluate_spotting(pd.DataFrame(pred), pd.DataFrame(gt), **kw)


G1 = {"video": ["a"], "onset": [10], "offset": [20], "type": ["micro"]}


@case("spot api: float onset 10.5")
def _():
    return api_error(_api_spot({**G1, "onset": [10.5], "score": [1.0]}, G1), names=("onset",))


@case("spot api: NaN offset")
def _():
    return api_error(_api_spot({**G1, "offset": [np.nan], "score": [1.0]}, G1), names=("offset",))


@case("spot api: string frames '10' read as numbers")
def _():
    try:
        result = _api_spot({**G1, "onset": ["10"], "offset": ["20"], "score": [1.0]}, G1)()
    except Exception as exc:  # noqa: BLE001
        return "traceback", f"{type(exc).__name__}: {exc}"
    f1 = float(result.table.loc["overall", "F1"])
    return ("correct", "F1 = 1") if f1 == 1.0 else ("silent", f"F1 = {f1}")


@case("spot api: missing type column")
def _():
    return api_error(
        _api_spot({"video": ["a"], "onset": [1], "offset": [2], "score": [1]}, G1), names=("type",)
    )


@case("spot api: iou_threshold=0")
def _():
    return api_error(_api_spot({**G1, "score": [1.0]}, G1, iou_threshold=0), names=("iou",))


@case("spot api: iou_threshold=nan")
def _():
    return api_error(_api_spot({**G1, "score": [1.0]}, G1, iou_threshold=float("nan")), names=("iou",))


@case("spot api: NaN score")
def _():
    return api_error(_api_spot({**G1, "score": [np.nan]}, G1), names=("score",))


@case("spot api: video None")
def _():
    return api_error(_api_spot({**G1, "video": [None], "score": [1.0]}, G1), names=("video",))


@case("spot api: list instead of DataFrame")
def _():
    from melib.evaluation.spotting import evaluate_spotting

    return api_error(
        lambda: evaluate_spotting([(1, 2)], pd.DataFrame(G1)),
        names=("pred",),
        exc_types=(ValueError, TypeError),
    )


@case("spot api: bool frames")
def _():
    return api_error(
        _api_spot({**G1, "onset": [True], "offset": [True], "score": [1.0]}, G1), names=("onset",)
    )


# ======================================================================= eval recognition


@case("rec: valid file")
def _():
    return ok_or_warn(*rec())


@case("rec: missing predicted column")
def _():
    return classify_error(*rec("sample,subject,true\na,s1,x\n"), names=("predicted",))


@case("rec: header only")
def _():
    return classify_error(*rec("sample,subject,dataset,true,predicted\n"), names=("pred.csv",))


@case("rec: empty file")
def _():
    return classify_error(*rec(""), names=("pred.csv",))


@case("rec: empty label cell")
def _():
    return classify_error(*rec(REC + "sub02_b,sub02,casme2,,negative\n"), names=("line 5",))


@case("rec: case/space-only label differences")
def _():
    text = REC.replace(",negative,negative", ", Negative ,NEGATIVE")
    return ok_or_warn(*rec(text), check=lambda o: "acc" in o.lower())


@case("rec: conflicting duplicate sample")
def _():
    return classify_error(*rec(REC + "sub01_a,sub01,casme2,negative,surprise\n"), names=("line",))


@case("rec: same sample listed in two subjects")
def _():
    return classify_error(*rec(REC + "sub01_a,sub02,casme2,negative,negative\n"), names=("sub01_a",))


@case("rec: predicted label never a true label (typo 'suprise')")
def _():
    return ok_or_warn(*rec(REC + "sub02_b,sub02,casme2,negative,suprise\n"), want_warning="suprise")


@case("rec: only one class")
def _():
    text = "sample,subject,true,predicted\na,s1,neg,neg\nb,s2,neg,neg\n"
    return ok_or_warn(*rec(text))


@case("rec: UTF-16 BOM")
def _():
    return ok_or_warn(*rec(REC, enc="utf-16"))


@case("rec: latin-1 label")
def _():
    return ok_or_warn(
        *rec(REC + "sub02_b,sub02,casme2,négatif,négatif\n", enc="latin-1"), want_warning="utf-8"
    )


@case("rec: --pred is a directory")
def _():
    d = fresh("recdir")
    return expect_error(["eval", "recognition", "--pred", d], names=(str(d),))


@case("rec: numeric labels 1/1.0")
def _():
    text = "sample,subject,true,predicted\na,s1,1,1.0\nb,s2,2,2\n"
    return ok_or_warn(*rec(text), want_warning="1.0")


@case("rec: --per-fold-mean with a single subject")
def _():
    return ok_or_warn(*rec("sample,subject,true,predicted\na,s1,x,x\nb,s1,y,x\n", extra=["--per-fold-mean"]))


def _api_rec(frame, **kw):
    from melib.evaluation.recognition import evaluate_recognition

    return lambda: evaluate_recognition(pd.DataFrame(frame), **kw)


R1 = {"sample": ["a", "b"], "subject": ["s1", "s2"], "true": ["x", "y"], "predicted": ["x", "x"]}


@case("rec api: NaN predicted")
def _():
    return api_error(_api_rec({**R1, "predicted": ["x", np.nan]}), names=("predicted",))


@case("rec api: None true")
def _():
    return api_error(_api_rec({**R1, "true": [None, "y"]}), names=("true",))


@case("rec api: missing subject")
def _():
    return api_error(_api_rec({k: v for k, v in R1.items() if k != "subject"}), names=("subject",))


@case("rec api: empty frame")
def _():
    return api_error(_api_rec({k: [] for k in R1}), names=("predictions",))


@case("rec api: labels= missing a class present")
def _():
    return api_error(_api_rec(R1, labels=["x"]), names=("y",))


@case("rec api: recognition_scores length mismatch")
def _():
    from melib.evaluation.recognition import recognition_scores

    return api_error(lambda: recognition_scores(["a", "b"], ["a"]), names=("y_pred",))


# ============================================================================ data summary


@case("data: missing workbook")
def _():
    d = fresh("nowb", "casme2")
    (d / "casme2" / "CASME2-coding-20140508.xlsx").unlink()
    rc, out, err = summary("casme2", d / "casme2")
    return classify_error(rc, out, err, names=("CASME",))


@case("data: 0-byte workbook")
def _():
    d = fresh("emptywb", "casme2")
    (d / "casme2" / "CASME2-coding-20140508.xlsx").write_bytes(b"")
    return classify_error(*summary("casme2", d / "casme2"), names=("CASME2-coding-20140508.xlsx",))


@case("data: CSV text saved as .xlsx")
def _():
    d = fresh("csvwb", "casme2")
    (d / "casme2" / "CASME2-coding-20140508.xlsx").write_text("Subject,Filename\n1,EP\n")
    return classify_error(*summary("casme2", d / "casme2"), names=("CASME2-coding-20140508.xlsx",))


@case("data: truncated workbook (zip cut)")
def _():
    d = fresh("cutwb", "casme2")
    wb = d / "casme2" / "CASME2-coding-20140508.xlsx"
    wb.write_bytes(wb.read_bytes()[:600])
    return classify_error(*summary("casme2", d / "casme2"), names=("CASME2-coding-20140508.xlsx",))


@case("data: workbook with only an empty sheet")
def _():
    d = fresh("emptysheet", "casme2")
    pd.DataFrame().to_excel(d / "casme2" / "CASME2-coding-20140508.xlsx", index=False, sheet_name="Other")
    return classify_error(*summary("casme2", d / "casme2"), names=("CASME2-coding-20140508.xlsx",))


@case("data: workbook with wrong sheet (samm_lv columns in casme2)")
def _():
    d = fresh("wrongsheet", "casme2")
    frame = pd.DataFrame({"Subject": ["006"], "Filename": ["006_1"], "Onset": [1], "Offset": [5]})
    frame.to_excel(d / "casme2" / "CASME2-coding-20140508.xlsx", index=False)
    return classify_error(*summary("casme2", d / "casme2"), names=("CASME2-coding-20140508.xlsx",))


@case("data: workbook header only")
def _():
    d = fresh("hdronly", "casme2")
    wb = d / "casme2" / "CASME2-coding-20140508.xlsx"
    head = pd.read_excel(wb).iloc[:0]
    head.to_excel(wb, index=False)
    return classify_error(*summary("casme2", d / "casme2"), names=("CASME2-coding-20140508.xlsx",))


def _edit_casme2(name, fn):
    d = fresh(name, "casme2")
    wb = d / "casme2" / "CASME2-coding-20140508.xlsx"
    frame = pd.read_excel(wb)
    frame = fn(frame)
    frame.to_excel(wb, index=False)
    return d, wb


@case("data: casme2 onset > offset")
def _():
    def fn(f):
        f = f.astype(object)
        f.loc[0, "OnsetFrame"], f.loc[0, "OffsetFrame"] = f.loc[0, "OffsetFrame"], f.loc[0, "OnsetFrame"]
        return f

    d, _ = _edit_casme2("onoff", fn)
    return classify_error(*summary("casme2", d / "casme2"), names=("row",))


@case("data: casme2 onset text 'abc'")
def _():
    def fn(f):
        f = f.astype(object)
        f.loc[1, "OnsetFrame"] = "abc"
        return f

    d, _ = _edit_casme2("ontext", fn)
    return classify_error(*summary("casme2", d / "casme2"), names=("abc",))


@case("data: casme2 negative onset")
def _():
    def fn(f):
        f = f.astype(object)
        f.loc[1, "OnsetFrame"] = -5
        return f

    d, _ = _edit_casme2("onneg", fn)
    return classify_error(*summary("casme2", d / "casme2"), names=("row 3",))


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


@case("data: a video folder replaced by a file")
def _():
    d = fresh("vidfile", "casme2")
    v = first_video(d)
    shutil.rmtree(v)
    v.write_text("not a folder")
    rc, out, err = summary("casme2", d / "casme2")
    if rc == 0 and "5 with frames" in out:
        return "correct", "treated as missing"
    return classify_error(rc, out, err, names=(v.name,))


@case("data: frames folder (CASME2_RAW_selected) is a file")
def _():
    d = fresh("framesfile", "casme2")
    f = d / "casme2" / "CASME2_RAW_selected"
    shutil.rmtree(f)
    f.write_text("x")
    rc, out, err = summary("casme2", d / "casme2")
    if rc == 0 and "no video folders" in out:
        return "correct", "reported in the summary"
    return classify_error(rc, out, err, names=("CASME2_RAW_selected",))


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
    rc, out, err = summary("casme2", d / "casme2")
    if rc == 0:
        return "correct", "ignored"
    return classify_error(rc, out, err, names=("EP99_99",))


@case("data: non-image files in a video folder (Thumbs.db, .DS_Store, notes.txt)")
def _():
    d = fresh("junk", "casme2")
    v = first_video(d)
    for n in ("Thumbs.db", ".DS_Store", "notes.txt"):
        (v / n).write_bytes(b"junk")
    return ok_or_warn(*summary("casme2", d / "casme2"), check=lambda o: "392 frames" in o)


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


@case("data: uppercase .JPG suffix and mixed .bmp")
def _():
    d = fresh("mixsuffix", "casme2")
    v = first_video(d)
    files = sorted(v.iterdir())
    files[0].rename(files[0].with_suffix(".JPG"))
    import cv2

    img = cv2.imread(str(files[1]))
    files[1].unlink()
    cv2.imwrite(str(files[1].with_suffix(".bmp")), img)
    return ok_or_warn(*summary("casme2", d / "casme2"), check=lambda o: "392 frames" in o)


@case("data: same number as .jpg and .bmp (different bytes)")
def _():
    d = fresh("jpgbmp", "casme2")
    v = first_video(d)
    f = sorted(v.iterdir())[2]
    import cv2

    cv2.imwrite(str(f.with_suffix(".bmp")), cv2.imread(str(f)))
    rc, out, err = summary("casme2", d / "casme2")
    if rc == 0 and f.stem in out:
        return "correct", "reported"
    return classify_error(rc, out, err, names=(f.stem,))


@case("data: a sub-folder inside a video folder")
def _():
    d = fresh("subsub", "casme2")
    v = first_video(d)
    (v / "extra").mkdir()
    shutil.copy(sorted(v.glob("*.jpg"))[0], v / "extra")
    return ok_or_warn(*summary("casme2", d / "casme2"), check=lambda o: "392 frames" in o)


@case("data: unreadable video folder (as nobody)")
def _():
    d = fresh("unread", "casme2")
    v = first_video(d)
    os.chmod(d, 0o755)
    for p in [WORK, d, *d.rglob("*")]:
        if p.is_dir():
            os.chmod(p, 0o755)
    os.chmod(v, 0o000)
    cmd = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        sys.executable,
        "-m",
        "melib",
        "data",
        "summary",
        "casme2",
        "--root",
        str(d / "casme2"),
    ]
    env = {**os.environ, "MELIB_CACHE": str(WORK / "nobody-cache"), "HOME": str(WORK)}
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=180)
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
    rc, out, err = summary("casme2", d / "casme2")
    if rc == 0 and "cover.jpg" in out + err:
        return "correct", "reported"
    return classify_error(rc, out, err, names=("cover.jpg",))


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
    cmd = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        sys.executable,
        "-m",
        "melib",
        "synth",
        "tiny",
        "--out",
        str(d / "corpus"),
        "--datasets",
        "smic_hs",
    ]
    env = {**os.environ, "MELIB_CACHE": str(d / "cache"), "HOME": "/tmp"}
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=180)
    os.chmod(d, 0o755)
    return classify_error(r.returncode, r.stdout, r.stderr, names=(str(d),))


@case("synth: --seed -1")
def _():
    d = fresh("syn-seed")
    rc, out, err = run_cli(["synth", "tiny", "--out", d, "--seed", "-1", "--datasets", "smic_hs"])
    if rc == 0:
        return "correct", "negative seed accepted"
    return classify_error(rc, out, err, names=("seed",))


@case("synth: --seed 2**70")
def _():
    d = fresh("syn-seedbig")
    rc, out, err = run_cli(["synth", "tiny", "--out", d, "--seed", str(2**70), "--datasets", "smic_hs"])
    if rc == 0:
        return "correct", "accepted"
    return classify_error(rc, out, err, names=("seed",))


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


@case("synth: SIGKILL mid-run then rerun leaves nothing behind")
def _():
    d = fresh("syn-kill")
    out = d / "corpus"
    env = {**os.environ, "MELIB_CACHE": str(d / "cache")}
    cmd = [sys.executable, "-m", "melib", "synth", "tiny", "--out", str(out)]
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(4.0)
    p.send_signal(signal.SIGKILL)
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
    d = fresh("syn-kill2")
    out = d / "corpus"
    env = {**os.environ, "MELIB_CACHE": str(d / "cache")}
    cmd = [sys.executable, "-m", "melib", "synth", "tiny", "--out", str(out)]
    p = subprocess.Popen(
        cmd + ["--datasets", "samm_lv"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(3.5)
    p.send_signal(signal.SIGKILL)
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
    d = fresh("syn-term")
    out = d / "corpus"
    env = {**os.environ, "MELIB_CACHE": str(d / "cache")}
    cmd = [sys.executable, "-m", "melib", "synth", "tiny", "--out", str(out), "--datasets", "samm_lv"]
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(3.5)
    p.send_signal(signal.SIGTERM)
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


@case("reproduce: -p epochs=-1 (negative)")
def _():
    rc, out, err, calls = reproduce(["--only", "03", "-p", "epochs=-1"])
    if calls:
        return "silent", "bad value reaches the notebook (fails only after papermill starts)"
    return classify_error(rc, out, err, names=("epochs",))


@case("reproduce: -p seed=1.5")
def _():
    return expect_reproduce_error(["--only", "03", "-p", "seed=1.5"], names=("seed",))


@case("reproduce: -p seed=true")
def _():
    return expect_reproduce_error(["--only", "03", "-p", "seed=true"], names=("seed",))


@case("reproduce: -p seed=-3")
def _():
    return expect_reproduce_error(["--only", "03", "-p", "seed=-3"], names=("seed",))


@case("reproduce: -p with empty key '=3'")
def _():
    return expect_reproduce_error(["--only", "03", "-p", "=3"], names=("=3",))


@case("reproduce: -p without '=' ")
def _():
    return expect_reproduce_error(["--only", "03", "-p", "seed"], names=("seed",))


@case("reproduce: -p typo 'thresold=0.5'")
def _():
    return expect_reproduce_error(["--only", "03", "-p", "thresold=0.5"], names=("threshold",))


@case("reproduce: -p same key twice with different values")
def _():
    return expect_reproduce_error(["--only", "03", "-p", "seed=1", "-p", "seed=2"], names=("seed",))


@case("reproduce: -p unbalanced YAML '[1,2'")
def _():
    return expect_reproduce_error(["--only", "03", "-p", "datasets=[1,2"], names=("datasets",))


@case("reproduce: -p profile=smoke with --profile smoke (no conflict)")
def _():
    rc, out, err, calls = reproduce(["--only", "03", "-p", "profile=smoke", "--out", fresh("rep-ok")])
    return ok_or_warn(rc, out, err)


@case("reproduce: -p profile=SMOKE (case)")
def _():
    return expect_reproduce_error(["--only", "03", "-p", "profile=SMOKE"], names=("profile",))


@case("reproduce: --only unknown name")
def _():
    return expect_reproduce_error(["--only", "99_nope"], names=("99_nope",))


@case("reproduce: --only ambiguous prefix '0'")
def _():
    return expect_reproduce_error(["--only", "0"], names=("ambiguous",))


@case("reproduce: --only empty string")
def _():
    return expect_reproduce_error(["--only", ""], names=("only",))


@case("reproduce: --out is a file")
def _():
    f = write(fresh("rep-file") / "out.txt", "x")
    return expect_reproduce_error(["--only", "03", "--out", f], names=("out.txt",))


@case("reproduce: --out under a file")
def _():
    f = write(fresh("rep-file2") / "out.txt", "x")
    return expect_reproduce_error(["--only", "03", "--out", f / "sub"], names=("out.txt",))


@case("reproduce: --data-root is a file")
def _():
    f = write(fresh("rep-dr") / "dr.txt", "x")
    return expect_reproduce_error(["--only", "03", "--data-root", f], names=("dr.txt",))


@case("reproduce: --data-root empty folder")
def _():
    d = fresh("rep-drempty")
    return expect_reproduce_error(
        ["--only", "03", "--data-root", d, "--out", fresh("rep-o2")], names=(str(d),)
    )


@case("reproduce: --timeout 0")
def _():
    return expect_reproduce_error(
        ["--only", "03", "--timeout", "0", "--out", fresh("rep-o3")], names=("timeout",)
    )


@case("reproduce: --timeout -5")
def _():
    return expect_reproduce_error(
        ["--only", "03", "--timeout", "-5", "--out", fresh("rep-o4")], names=("timeout",)
    )


@case("reproduce: -p data_root=123 (number)")
def _():
    return expect_reproduce_error(["--only", "03", "-p", "data_root=123"], names=("data_root",))


@case("reproduce: -p lr=abc where default is None")
def _():
    return expect_reproduce_error(["--only", "03", "-p", "lr=abc", "--out", fresh("rep-o5")], names=("lr",))


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


@case("cache: synth corpus cache with a damaged workbook is regenerated")
def _():
    from melib.data import synth

    cache = WORK / "ens-cache"
    if cache.exists():
        shutil.rmtree(cache)
    old = os.environ["MELIB_CACHE"]
    os.environ["MELIB_CACHE"] = str(cache)
    try:
        root = synth.ensure_corpus("tiny", 0, progress=False)
        wb = root / "casme2" / "CASME2-coding-20140508.xlsx"
        wb.write_bytes(wb.read_bytes()[:100])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            root2 = synth.ensure_corpus("tiny", 0, progress=False)
        from melib.data.datasets import load_dataset

        try:
            load_dataset("casme2", root2 / "casme2", require_frames=False)
        except Exception as exc:  # noqa: BLE001
            return "silent", f"damaged cached corpus reused: {type(exc).__name__}: {str(exc)[:140]}"
        return "correct", "regenerated"
    finally:
        os.environ["MELIB_CACHE"] = old


@case("cache: synth corpus cache with a deleted frame is regenerated")
def _():
    from melib.data import synth

    cache = WORK / "ens-cache2"
    if cache.exists():
        shutil.rmtree(cache)
    old = os.environ["MELIB_CACHE"]
    os.environ["MELIB_CACHE"] = str(cache)
    try:
        root = synth.ensure_corpus("tiny", 0, progress=False)
        frames = sorted((root / "casme2").rglob("*.jpg"))
        frames[7].unlink()
        root2 = synth.ensure_corpus("tiny", 0, progress=False)
        from melib.data.datasets import load_dataset

        try:
            load_dataset("casme2", root2 / "casme2")
        except Exception as exc:  # noqa: BLE001
            return "silent", f"damaged cached corpus reused: {type(exc).__name__}: {str(exc)[:140]}"
        return "correct", "regenerated"
    finally:
        os.environ["MELIB_CACHE"] = old


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
