"""``melib reproduce``: execute the notebooks with papermill, resumably, then build the book.

Each executed copy records what produced it (a hash of the source notebook, the
parameters and the melib version) in its metadata under ``melib``. A rerun skips the
notebooks whose copy is current, so a batch that was interrupted picks up where it
stopped; ``--force`` redoes everything.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from melib import __version__
from melib.runtime import atomic_path, check_profile, project_root

METADATA_KEY = "melib"


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


def default_output_dir(profile: str) -> Path:
    """smoke copies are nbval's references; book and full copies are what the book shows."""
    root = project_root()
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
        parsed = yaml.safe_load(value)
        if isinstance(parsed, str):
            # YAML 1.1 reads 5e-4 (no dot) as a string; a learning rate is a number.
            try:
                parsed = float(parsed)
            except ValueError:
                pass
        parameters[key.strip()] = parsed
    return parameters


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


def execute_one(source: Path, output: Path, parameters: dict, timeout: int | None,
                failed_dir: Path) -> RunResult:
    """Run one notebook; the executed copy replaces ``output`` only if every cell passed."""
    import nbformat
    import papermill as pm

    start = time.perf_counter()
    output.parent.mkdir(parents=True, exist_ok=True)
    scratch = output.with_name(f".{output.stem}.running{output.suffix}")
    try:
        pm.execute_notebook(
            str(source), str(scratch), parameters=parameters, kernel_name="python3",
            cwd=str(source.parent), progress_bar=sys.stderr.isatty(),
            execution_timeout=timeout, log_output=False,
        )
    except Exception as exc:  # papermill has written the notebook up to the failing cell
        failed_dir.mkdir(parents=True, exist_ok=True)
        kept = failed_dir / output.name
        if scratch.exists():
            scratch.replace(kept)
        return RunResult(source.stem, "failed", time.perf_counter() - start,
                         _describe_failure(exc), kept)
    except BaseException:  # interrupted: leave no partial copy behind
        scratch.unlink(missing_ok=True)
        raise
    nb = nbformat.read(str(scratch), as_version=4)
    nb.metadata[METADATA_KEY] = provenance(source, parameters)
    with atomic_path(output) as tmp:
        nbformat.write(nb, str(tmp))
    scratch.unlink()
    return RunResult(source.stem, "ok", time.perf_counter() - start, output=output)


def reproduce(profile: str = "book", only: list[str] | None = None,
              overrides: dict | None = None, data_root: str | None = None,
              out: str | Path | None = None, force: bool = False,
              timeout: int | None = None) -> list[RunResult]:
    check_profile(profile)
    sources = discover_notebooks(only)
    if not sources:
        raise FileNotFoundError(f"no notebooks found in {notebooks_dir()}")
    if data_root is not None and not Path(data_root).is_dir():
        raise FileNotFoundError(
            f"--data-root {data_root}: no such folder. Point it at the folder holding one "
            "subfolder per dataset (casme_sq, samm_lv, ...), see README 'Real datasets'"
        )
    out_dir = Path(out) if out else default_output_dir(profile)
    failed_dir = project_root() / "_build" / "failed"

    parameters = {"profile": profile}
    if data_root is not None:
        parameters["data_root"] = str(Path(data_root).resolve())
    parameters.update(overrides or {})

    results = []
    for number, source in enumerate(sources, 1):
        output = out_dir / source.name
        label = f"[{number}/{len(sources)}] {source.stem}"
        if not force and is_current(output, provenance(source, parameters)):
            print(f"{label}: current, skipped", flush=True)
            results.append(RunResult(source.stem, "skipped", output=output))
            continue
        print(f"{label}: executing ({profile}) ...", flush=True)
        result = execute_one(source, output, parameters, timeout, failed_dir)
        print(f"{label}: {result.status} in {result.seconds:.0f} s"
              + (f" - {result.error}" if result.error else ""), flush=True)
        results.append(result)
    return results


def summary_table(results: list[RunResult]) -> str:
    width = max([len("notebook")] + [len(r.name) for r in results])
    lines = [f"{'notebook':<{width}}  {'status':<8}  {'wall time':>9}",
             f"{'-' * width}  {'-' * 8}  {'-' * 9}"]
    for r in results:
        wall = f"{r.seconds:8.1f}s" if r.status != "skipped" else "        -"
        lines.append(f"{r.name:<{width}}  {r.status:<8}  {wall}")
    return "\n".join(lines)


def cli_reproduce(args) -> int:
    results = reproduce(
        profile=args.profile, only=args.only, overrides=parse_overrides(args.parameter),
        data_root=args.data_root, out=args.out, force=args.force, timeout=args.timeout,
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
            print(f"  {r.name}: {r.error}\n    see {r.output}", file=sys.stderr)
        return 1
    return status
