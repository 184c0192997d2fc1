"""``melib reproduce``: execute the notebooks with papermill, resumably, then build the book.

Each executed copy records what produced it (a hash of the source notebook, the
parameters and the melib version) in its metadata under ``melib``. A rerun skips the
notebooks whose copy is current, so a batch that was interrupted picks up where it
stopped; ``--force`` redoes everything.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from melib import __version__
from melib.runtime import atomic_path, check_profile, file_lock, project_root

METADATA_KEY = "melib"
FAILED_DIR = "failed"  # <out>/failed/: the partial execution of a notebook that failed


@dataclass
class RunResult:
    name: str
    status: str  # "ok", "skipped" (current), "failed"
    seconds: float = 0.0
    error: str = ""
    output: Path | None = None
    details: dict = field(default_factory=dict)


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def default_output_dir(profile: str, plumbing: bool = False) -> Path:
    """smoke copies are nbval's references; book and full copies are what the book shows;
    plumbing runs (``--limit-steps``) go to the build folder, beside nothing they could replace."""
    root = project_root()
    if plumbing:
        return root / "_build" / f"plumbing-{profile}"
    return root / "tests" / "notebooks" if profile == "smoke" else root / "book"


def discover_notebooks(only: list[str] | None = None) -> list[Path]:
    sources = sorted(p for p in notebooks_dir().glob("*.ipynb") if not p.name.startswith("."))
    if not only:
        return sources
    chosen = []
    for wanted in only:
        stem = Path(wanted).stem
        matches = [p for p in sources if p.stem == stem] or [
            p for p in sources if p.stem.startswith(stem) or p.stem.split("_", 1)[-1].startswith(stem)
        ]
        if len(matches) != 1:
            names = ", ".join(p.stem for p in sources)
            what = "matches no notebook" if not matches else "is ambiguous"
            raise ValueError(f"--only {wanted!r} {what}; choose from: {names}")
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return chosen


def parse_overrides(pairs: list[str]) -> dict:
    """``key=value`` strings to a dict; values are read as YAML (``3`` is an int)."""
    parameters = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"-p {pair!r}: expected KEY=VALUE, e.g. -p seed=3")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or type(exc).__name__
            raise ValueError(
                f"-p {pair!r}: the value is not valid YAML ({problem}); quote "
                f"a text value, e.g. -p {key.strip()}='\"...\"'"
            ) from None
        if isinstance(parsed, str):
            # YAML 1.1 reads 5e-4 (no dot) as a string; a learning rate is a number.
            try:
                parsed = float(parsed)
            except ValueError:
                pass
        key = key.strip()
        if key in parameters and parameters[key] != parsed:
            raise ValueError(
                f"-p {key}: given twice with different values ({parameters[key]!r} and "
                f"{parsed!r}); give it once"
            )
        parameters[key] = parsed
    return parameters


def notebook_parameters(source: Path) -> dict:
    """``{name: default}`` of the cell tagged ``parameters`` (names assigned a literal)."""
    try:
        nb = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{source}: not a readable notebook ({exc})") from None
    for cell in nb.get("cells", []):
        if "parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        text = cell.get("source", "")
        text = "".join(text) if isinstance(text, list) else text
        defaults = {}
        for node in ast.parse(text).body:
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                try:
                    defaults[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    defaults[node.targets[0].id] = None  # not a literal: no type to check
        return defaults
    return {}


# Checked here only when the parameters cell gives the type by a literal default;
# None defaults ("the profile's value") are validated by each paper's configure().
_KINDS = (
    (bool, "true or false", lambda v: isinstance(v, bool)),
    (int, "a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    (float, "a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
)


def check_overrides(overrides: dict, sources: list[Path]) -> None:
    """Unknown names (with the closest known one) and wrongly typed values are errors.

    A name is known when the parameters cell of at least one of ``sources`` assigns it
    (``-p epochs=3`` over every notebook is fine: papermill passes it to those that have
    it). A value must have the type of the cell's default where that default is a bool,
    an int or a float.
    """
    declared = {source: notebook_parameters(source) for source in sources}
    known = sorted({name for names in declared.values() for name in names})
    for name, value in overrides.items():
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = (f"did you mean {close[0]}? " if close else "") + "known: " + ", ".join(known)
            raise ValueError(f"-p {name}={value!r}: no notebook run here has a parameter {name!r}; {hint}")
        for source, defaults in declared.items():
            if name not in defaults or defaults[name] is None:
                continue
            default = defaults[name]
            for kind, words, fits in _KINDS:
                if isinstance(default, kind):
                    if not fits(value):
                        raise ValueError(
                            f"-p {name}={value!r}: {name} must be {words} (the default in "
                            f"{source.stem}'s parameters cell is {default!r}), e.g. "
                            f"-p {name}={default!r}".replace("=True", "=true").replace("=False", "=false")
                        )
                    break


PAPER_MODULES = ("softnet", "lbcnn", "dyngeonet", "cropnet", "bai")
DATASET_FOLDERS = ("casme_sq", "samm_lv", "smic_e_long", "casme2", "samm", "smic_hs")


def check_with_configure(sources: list[Path], parameters: dict) -> None:
    """Resolve each paper notebook's parameters with that paper's ``configure`` before any
    notebook runs, so that a value it refuses (``-p epochs=-1``, ``-p seed=-3``, a data
    root without the paper's datasets) is one error now, not a failed notebook later.
    Only :class:`~melib.pipelines.common.ParameterError` is reported here."""
    import contextlib
    import importlib
    import inspect
    import io
    import warnings

    papers = [s for s in sources if s.stem.partition("_")[2] in PAPER_MODULES]
    if not papers:
        return
    from melib.pipelines.common import ParameterError

    for source in papers:
        module = importlib.import_module(f"melib.pipelines.{source.stem.partition('_')[2]}")
        accepted = inspect.signature(module.configure).parameters
        values = {**notebook_parameters(source), **parameters}
        kwargs = {name: value for name, value in values.items() if name in accepted}
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                module.configure(**kwargs)
        except ParameterError as exc:
            raise ValueError(f"{source.stem}: {exc}") from None
        except Exception:  # noqa: BLE001 - anything else is the notebook's to report
            continue


def _check_output_dir(out_dir: Path) -> None:
    """Fail before any notebook runs when the results could not be written."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir}: this is a file; give a folder for the executed notebooks")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(
            f"--out {out_dir}: cannot create the folder ({exc.strerror}); choose a folder you can write to"
        ) from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out_dir}: the folder is not writable; choose a folder you can write to")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def scratch_path(output: Path) -> Path:
    """Where papermill writes while a notebook runs: hidden, and named by our process."""
    return output.with_name(f".{output.stem}.running.{os.getpid()}{output.suffix}")


def clean_stale_partials(out_dir: Path, names: list[str]) -> list[Path]:
    """Remove what an interrupted (killed) run of these notebooks left in ``out_dir``.

    Only melib's own names are touched: ``.<name>.running.ipynb`` (older melib),
    ``.<name>.running.<pid>.ipynb`` of a process that is gone, and the
    ``.<name>.<random>.tmp.ipynb`` of an interrupted atomic write.
    """
    removed = []
    if not out_dir.is_dir():
        return removed
    for name in names:
        pattern = re.compile(
            rf"^\.{re.escape(name)}\.(running(\.(\d+))?|[A-Za-z0-9_]{{8}}\.tmp)"
            r"\.ipynb$"
        )
        for path in out_dir.glob(f".{name}.*.ipynb"):
            match = pattern.match(path.name)
            if not match or not path.is_file():
                continue
            if match.group(3) and _pid_alive(int(match.group(3))):
                continue  # another run is writing it now
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def source_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def provenance(source: Path, parameters: dict) -> dict:
    return {
        "source": source.name,
        "source_sha256": source_hash(source),
        "parameters": parameters,
        "melib_version": __version__,
    }


def is_current(executed: Path, expected: dict) -> bool:
    if not executed.is_file():
        return False
    try:
        recorded = json.loads(executed.read_text())["metadata"].get(METADATA_KEY, {})
    except (ValueError, KeyError):
        return False  # a damaged copy is simply redone
    return all(recorded.get(k) == v for k, v in expected.items())


def _describe_failure(exc: Exception) -> str:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        first_line = str(exc.evalue).strip().splitlines()[0] if str(exc.evalue).strip() else ""
        return f"cell {exc.cell_index} (In [{exc.exec_count}]): {exc.ename}: {first_line}"
    return f"{type(exc).__name__}: {exc}"


def _final_bar_states(text: str) -> str:
    """A progress bar redraws its line with carriage returns: keep each line's last state,
    so a reader sees one summary line per bar instead of every redraw."""
    lines = (line.rsplit("\r", 1)[-1].rstrip() for line in text.replace("\r\n", "\n").split("\n"))
    kept = [line for line in lines if line]
    return "\n".join(kept) + "\n" if kept else ""


def relative_papermill_paths(nb) -> None:
    """papermill records where it read and wrote: keep those paths relative to the project."""
    record = nb.metadata.get("papermill", {})
    root = str(project_root().resolve())
    for key in ("input_path", "output_path"):
        if isinstance(record.get(key), str):
            record[key] = record[key].replace(root + "/", "")


def tidy_outputs(nb) -> None:
    """Make an executed copy readable and machine-independent, in place: consecutive
    stderr outputs of a cell are merged and each progress bar keeps its final line, and
    the cache folder and the project folder print as ``$MELIB_CACHE`` and ``<project>``."""
    import os

    cache = str(Path(os.environ.get("MELIB_CACHE", project_root() / ".cache")).resolve())
    places = [(cache, "$MELIB_CACHE"), (str(project_root().resolve()), "<project>")]

    def plain(text: str) -> str:
        for path, name in places:
            text = text.replace(path, name)
        return text

    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                out["text"] = plain("".join(out["text"]) if isinstance(out["text"], list) else out["text"])
                if (
                    out.get("name") == "stderr"
                    and outputs
                    and outputs[-1].get("output_type") == "stream"
                    and outputs[-1].get("name") == "stderr"
                ):
                    outputs[-1]["text"] += out["text"]
                    continue
            else:
                for mime in ("text/plain", "text/html", "text/markdown"):
                    value = out.get("data", {}).get(mime)
                    if value is not None:
                        out["data"][mime] = plain("".join(value) if isinstance(value, list) else value)
            outputs.append(out)
        for out in outputs:
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                out["text"] = _final_bar_states(out["text"])
        cell["outputs"] = [o for o in outputs if not (o.get("output_type") == "stream" and not o["text"])]


def execute_one(
    source: Path, output: Path, parameters: dict, timeout: int | None, failed_dir: Path
) -> RunResult:
    """Run one notebook; the executed copy replaces ``output`` only if every cell passed."""
    import nbformat
    import papermill as pm

    start = time.perf_counter()
    output.parent.mkdir(parents=True, exist_ok=True)
    scratch = scratch_path(output)
    try:
        pm.execute_notebook(
            str(source),
            str(scratch),
            parameters=parameters,
            kernel_name="python3",
            cwd=str(source.parent),
            progress_bar=sys.stderr.isatty(),
            execution_timeout=timeout,
            log_output=False,
        )
    except Exception as exc:  # papermill has written the notebook up to the failing cell
        failed_dir.mkdir(parents=True, exist_ok=True)
        kept = failed_dir / output.name
        if scratch.exists():
            scratch.replace(kept)
        else:
            kept = None
        return RunResult(source.stem, "failed", time.perf_counter() - start, _describe_failure(exc), kept)
    except BaseException:  # interrupted: leave no partial copy behind
        scratch.unlink(missing_ok=True)
        raise
    nb = nbformat.read(str(scratch), as_version=4)
    if parameters.get("profile") != "smoke":  # smoke copies are nbval's references: kept verbatim
        tidy_outputs(nb)
    relative_papermill_paths(nb)
    nb.metadata[METADATA_KEY] = provenance(source, parameters)
    with atomic_path(output) as tmp:
        nbformat.write(nb, str(tmp))
    scratch.unlink()
    (failed_dir / output.name).unlink(missing_ok=True)  # an earlier failure is now fixed
    return RunResult(source.stem, "ok", time.perf_counter() - start, output=output)


def reproduce(
    profile: str = "book",
    only: list[str] | None = None,
    overrides: dict | None = None,
    data_root: str | None = None,
    out: str | Path | None = None,
    force: bool = False,
    timeout: int | None = None,
    limit_steps: int | None = None,
) -> list[RunResult]:
    """Execute ``only`` (or every notebook) in ``profile``; see the README.

    ``limit_steps=N`` makes a plumbing run: every setting of the profile is kept, but each
    paper notebook trains at most N optimiser steps on the tiny corpus with at most two
    folds (their ``limit_steps`` parameter); the copies go to ``_build/plumbing-<profile>``
    unless ``out`` says otherwise, so they never replace the book's.
    """
    check_profile(profile)
    overrides = dict(overrides or {})
    if "limit_steps" in overrides:  # -p limit_steps=N is --limit-steps N
        given = overrides.pop("limit_steps")
        if limit_steps is not None and given != limit_steps:
            raise ValueError(
                f"-p limit_steps={given!r} conflicts with --limit-steps {limit_steps}; use only one"
            )
        limit_steps = given
    if limit_steps is not None and (
        isinstance(limit_steps, bool) or not isinstance(limit_steps, int) or limit_steps < 1
    ):
        raise ValueError(f"--limit-steps {limit_steps!r}: give a whole number of optimiser steps >= 1")
    sources = discover_notebooks(only)
    if not sources:
        raise FileNotFoundError(f"no notebooks found in {notebooks_dir()}")
    overrides = dict(overrides or {})
    if "profile" in overrides:
        if overrides["profile"] != profile:
            raise ValueError(
                f"-p profile={overrides['profile']!r} conflicts with --profile "
                f"{profile} (which also picks the output folder); use only "
                f"--profile {overrides['profile']}"
            )
        del overrides["profile"]
    if "data_root" in overrides:
        given = overrides.pop("data_root")
        if (
            data_root is not None
            and given is not None
            and Path(str(given)).resolve() != Path(data_root).resolve()
        ):
            raise ValueError(
                f"-p data_root={given!r} conflicts with --data-root {data_root}; use only --data-root"
            )
        if given is not None and not isinstance(given, str):
            raise ValueError(f"-p data_root={given!r}: give a folder path, or use --data-root")
        data_root = given if given is not None else data_root
    check_overrides(overrides, sources)
    if data_root is not None and not Path(data_root).is_dir():
        raise FileNotFoundError(
            f"--data-root {data_root}: no such folder. Point it at the folder holding one "
            "subfolder per dataset (casme_sq, samm_lv, ...), see README 'Real datasets'"
        )
    if data_root is not None and not any((Path(data_root) / k).is_dir() for k in DATASET_FOLDERS):
        raise ValueError(
            f"--data-root {data_root}: no dataset folder in it ({', '.join(DATASET_FOLDERS)}). "
            "Point it at the folder holding one subfolder per dataset, see README 'Real datasets'"
        )
    if timeout is not None and timeout <= 0:
        raise ValueError(f"--timeout {timeout}: give a number of seconds > 0, or leave it out (no limit)")
    out_dir = Path(out) if out else default_output_dir(profile, plumbing=limit_steps is not None)
    _check_output_dir(out_dir)
    # Beside the results, never in the project: pytest (conftest) and the book skip it.
    failed_dir = out_dir / FAILED_DIR
    clean_stale_partials(out_dir, [source.stem for source in discover_notebooks()])

    parameters = {"profile": profile}
    if data_root is not None:
        parameters["data_root"] = str(Path(data_root).resolve())
    parameters.update(overrides or {})
    if overrides or data_root is not None:
        check_with_configure(sources, parameters)

    lock = file_lock(
        out_dir / ".melib-reproduce.lock",
        remove=True,
        busy=f"--out {out_dir}: another melib reproduce (process {{holder}}) is writing there; "
        "wait for it to finish, or give another --out",
    )
    with lock:
        return _run_batch(sources, out_dir, parameters, force, timeout, failed_dir, profile, limit_steps)


def _run_batch(
    sources, out_dir, parameters, force, timeout, failed_dir, profile, limit_steps
) -> list[RunResult]:
    results = []
    for number, source in enumerate(sources, 1):
        if limit_steps is not None and "limit_steps" in notebook_parameters(source):
            parameters = {**parameters, "limit_steps": limit_steps}
        else:
            parameters = {k: v for k, v in parameters.items() if k != "limit_steps"}
        output = out_dir / source.name
        label = f"[{number}/{len(sources)}] {source.stem}"
        if not force and is_current(output, provenance(source, parameters)):
            print(f"{label}: current, skipped", flush=True)
            results.append(RunResult(source.stem, "skipped", output=output))
            continue
        print(f"{label}: executing ({profile}) ...", flush=True)
        result = execute_one(source, output, parameters, timeout, failed_dir)
        print(
            f"{label}: {result.status} in {result.seconds:.0f} s"
            + (f" - {result.error}" if result.error else ""),
            flush=True,
        )
        results.append(result)
    return results


def summary_table(results: list[RunResult]) -> str:
    width = max([len("notebook")] + [len(r.name) for r in results])
    lines = [
        f"{'notebook':<{width}}  {'status':<8}  {'wall time':>9}",
        f"{'-' * width}  {'-' * 8}  {'-' * 9}",
    ]
    for r in results:
        wall = f"{r.seconds:8.1f}s" if r.status != "skipped" else "        -"
        lines.append(f"{r.name:<{width}}  {r.status:<8}  {wall}")
    return "\n".join(lines)


def cli_reproduce(args) -> int:
    results = reproduce(
        profile=args.profile,
        only=args.only,
        overrides=parse_overrides(args.parameter),
        data_root=args.data_root,
        out=args.out,
        force=args.force,
        timeout=args.timeout,
        limit_steps=args.limit_steps,
    )
    print()
    print(summary_table(results))
    failures = [r for r in results if r.status == "failed"]
    status = 0
    if not args.no_book:
        from melib.book import build_book

        status = build_book(strict=True)
    if failures:
        print("\nFailed notebooks (the partial execution is kept for inspection):", file=sys.stderr)
        for r in failures:
            seen = f"\n    see {r.output}" if r.output else ""
            print(f"  {r.name}: {r.error}{seen}", file=sys.stderr)
        return 1
    return status
