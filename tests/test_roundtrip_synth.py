"""Joint check of the synthetic corpus and the loaders: synth -> loader -> manifest.

The loaders must read back exactly the manifest's events in melib's frame convention,
after the documented quirk fixes: a CAS(ME)² offset written as 0 becomes the apex, and
SAMM-LV's onset-0 rows are dropped by default.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from melib.data import datasets as D

synth = pytest.importorskip("melib.data.synth")


@pytest.fixture(scope="module")
def corpus():
    return synth.ensure_corpus("tiny", seed=0, progress=False)


def _expected(manifest: dict, name: str) -> Counter:
    rows = Counter()
    for video in manifest["videos"]:
        for ev in video["events"]:
            if "onset_zero" in ev["quirks"]:
                continue  # dropped by default, as SOFTNet does
            idx = dict(ev["index"])
            if "offset_zero" in ev["quirks"]:
                idx["offset"] = idx["apex"]
            if name in ("smic_hs", "smic_e_long"):  # no apex in these releases: the middle
                idx["apex"] = (idx["onset"] + idx["offset"]) // 2
            # SAMM-LV's workbook has no emotion column.
            emotion = "unknown" if name == "samm_lv" else str(ev["emotion"]).lower()
            aus = str(ev["workbook"].get("aus", "")) if ev.get("workbook") else ""
            rows[(video["folder"], idx["onset"], idx["apex"], idx["offset"], ev["type"], emotion, aus)] += 1
    return rows


def _loaded(ds: D.Dataset) -> Counter:
    folder = {v: p.relative_to(ds.root).as_posix() for v, p in zip(ds.videos["video"], ds.videos["path"])}
    a = ds.annotations
    return Counter(
        zip(a["video"].map(folder), a["onset"], a["apex"], a["offset"], a["type"], a["emotion"], a["aus"])
    )


@pytest.mark.parametrize("name", D.DATASETS)
def test_loader_reads_back_the_manifest(corpus, name):
    manifest = synth.load_manifest(corpus, name)
    ds = D.load_dataset(name, corpus / name)
    assert _loaded(ds) == _expected(manifest, name)
    assert ds.fps == manifest["fps"]
    found = ds.videos.assign(folder=[p.relative_to(ds.root).as_posix() for p in ds.videos["path"]])
    found = found.set_index("folder")
    for video in manifest["videos"]:
        row = found.loc[video["folder"]]
        assert row["n_frames"] == video["n_frames"]
        assert row["first_number"] == video["first_frame_number"]
    if name in D.RECOGNITION:
        assert ds.annotations["sample"].is_unique


def test_quirks_are_logged(corpus):
    cas = D.load_dataset("casme_sq", corpus / "casme_sq")
    assert any("offset 0" in line for line in cas.fix_log)
    lv = D.load_dataset("samm_lv", corpus / "samm_lv")
    assert any("non-integer" in line for line in lv.fix_log)
    smic = D.load_dataset("smic_e_long", corpus / "smic_e_long")
    assert any("non-sample rows" in line for line in smic.fix_log)


def test_read_frames_and_summary(corpus, capsys):
    from melib.cli import main

    ds = D.load_dataset("casme_sq", corpus / "casme_sq")
    video = ds.annotations["video"].iloc[0]
    frame = ds.read_frame(video, ds.annotations["apex"].iloc[0], gray=True)
    assert frame.ndim == 2 and frame.std() > 5
    assert main(["data", "summary", "casme_sq", "--root", str(corpus / "casme_sq"), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["expressions"] == len(ds.annotations) and s["frames_found"] == int(ds.videos["n_frames"].sum())
    comp = D.load_from_data_root("megc2019", corpus)
    assert set(comp.annotations["emotion"]) <= set(D.MEGC2019_CLASSES)
    assert len(comp.annotations) and set(comp.annotations["dataset"]) <= {"casme2", "samm", "smic_hs"}
