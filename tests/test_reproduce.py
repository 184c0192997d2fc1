"""melib reproduce: overrides reach the notebook, failures are isolated, reruns resume."""

from __future__ import annotations

import json

import pytest
from builders import write_notebook

from melib import reproduce as rep


def _notebook(path, body: str):
    write_notebook(path, "seed = 0\nprofile = 'book'\ndata_root = None\ndevice = 'auto'", body)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    sources = tmp_path / "notebooks"
    sources.mkdir()
    _notebook(sources / "10_good.ipynb", "print(f'seed is {seed}, profile is {profile}')")
    _notebook(sources / "20_bad.ipynb", "raise RuntimeError('boom in the second cell')")
    _notebook(sources / "30_after.ipynb", "print('still ran')")
    monkeypatch.setattr(rep, "notebooks_dir", lambda: sources)
    monkeypatch.setattr(rep, "project_root", lambda: tmp_path)
    return tmp_path


def _stdout(path):
    nb = json.loads(path.read_text())
    texts = [o.get("text", "") for c in nb["cells"] for o in c.get("outputs", [])]
    return "".join("".join(t) if isinstance(t, list) else t for t in texts)


def test_parse_overrides_reads_yaml_values():
    assert rep.parse_overrides(["seed=3", "data_root=/x/y", "lr=5e-4", "flag=true"]) == {
        "seed": 3,
        "data_root": "/x/y",
        "lr": 5e-4,
        "flag": True,
    }
    with pytest.raises(ValueError, match="KEY=VALUE"):
        rep.parse_overrides(["seed"])


def test_only_accepts_prefixes_and_rejects_unknown_names(workspace):
    assert [p.stem for p in rep.discover_notebooks(["10"])] == ["10_good"]
    assert [p.stem for p in rep.discover_notebooks(["after"])] == ["30_after"]
    with pytest.raises(ValueError, match="matches no notebook"):
        rep.discover_notebooks(["softnet"])


def test_failure_is_isolated_named_and_the_rest_resumes(workspace, capsys):
    out = workspace / "executed"
    results = rep.reproduce(profile="smoke", overrides={"seed": 42}, out=out)
    status = {r.name: r for r in results}
    assert status["10_good"].status == "ok"
    assert status["30_after"].status == "ok", "a failing notebook must not stop the others"
    bad = status["20_bad"]
    assert bad.status == "failed"
    assert "RuntimeError" in bad.error and "boom" in bad.error and "cell" in bad.error
    assert not (out / "20_bad.ipynb").exists(), "a failed run must not look like a result"
    assert "seed is 42, profile is smoke" in _stdout(out / "10_good.ipynb")

    # A rerun skips what is current and retries only the failure.
    again = {r.name: r.status for r in rep.reproduce(profile="smoke", overrides={"seed": 42}, out=out)}
    assert again == {"10_good": "skipped", "20_bad": "failed", "30_after": "skipped"}

    # Changing a parameter makes the copies stale; --force redoes current ones.
    changed = {
        r.name: r.status for r in rep.reproduce(profile="smoke", overrides={"seed": 7}, out=out, only=["10"])
    }
    assert changed == {"10_good": "ok"}
    forced = {
        r.name: r.status
        for r in rep.reproduce(profile="smoke", overrides={"seed": 7}, out=out, only=["10"], force=True)
    }
    assert forced == {"10_good": "ok"}


def test_editing_the_source_makes_the_copy_stale(workspace):
    out = workspace / "executed"
    rep.reproduce(profile="smoke", out=out, only=["30"])
    source = workspace / "notebooks" / "30_after.ipynb"
    _notebook(source, "print('edited')")
    assert [r.status for r in rep.reproduce(profile="smoke", out=out, only=["30"])] == ["ok"]
    assert "edited" in _stdout(out / "30_after.ipynb")


def test_missing_data_root_is_a_clear_error(workspace, tmp_path):
    with pytest.raises(FileNotFoundError, match="one subfolder per dataset"):
        rep.reproduce(profile="smoke", data_root=str(tmp_path / "nowhere"))


def test_cli_exit_code_and_summary(workspace, capsys):
    from melib.cli import main

    code = main(["reproduce", "--profile", "smoke", "--no-book", "--out", str(workspace / "o")])
    printed = capsys.readouterr()
    assert code == 1
    assert "notebook" in printed.out and "wall time" in printed.out
    assert "20_bad" in printed.err and "RuntimeError" in printed.err


def test_a_second_batch_into_the_same_output_says_why_and_leaves_no_lock(workspace):
    from melib.runtime import BusyError, file_lock

    out = workspace / "out"
    with file_lock(out / ".melib-reproduce.lock", remove=True):
        with pytest.raises(BusyError, match=r"another melib reproduce \(process \d+\).*another --out"):
            rep.reproduce(profile="smoke", only=["10"], out=out)
    assert not (out / "10_good.ipynb").exists()
    results = rep.reproduce(profile="smoke", only=["10"], out=out)
    assert [r.status for r in results] == ["ok"]
    assert sorted(p.name for p in out.iterdir()) == ["10_good.ipynb"]


def test_tidy_outputs_keeps_the_final_bar_state_and_hides_machine_paths(monkeypatch, tmp_path):
    import nbformat

    monkeypatch.setenv("MELIB_CACHE", str(tmp_path / "cache"))
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text="\rfeatures:   0%| 0/2"),
        nbformat.v4.new_output("stream", name="stderr", text="\rfeatures:  50%| 1/2\rfeatures: 100%| 2/2\n"),
        nbformat.v4.new_output("stream", name="stdout", text=f"cache {tmp_path / 'cache'}/synth\n"),
        nbformat.v4.new_output("stream", name="stderr", text="\rtrain: 100%| 4/4\n"),
    ]
    nb.cells = [cell]
    rep.tidy_outputs(nb)
    texts = [(o["name"], o["text"]) for o in nb.cells[0].outputs]
    assert texts == [
        ("stderr", "features: 100%| 2/2\n"),
        ("stdout", "cache $MELIB_CACHE/synth\n"),
        ("stderr", "train: 100%| 4/4\n"),
    ]
