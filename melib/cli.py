"""The ``melib`` command line.

Argument parsing lives here; each handler is imported lazily from the module that owns
the work, so ``melib --help`` stays fast (no torch import).

Errors: a mistake a user can make (a missing or unreadable file, a bad value, a folder
that cannot be written, a damaged input file) ends in one line on stderr,
``melib COMMAND: error: ...``, and exit status 2; Ctrl-C exits with 130 and a closed
output pipe (``melib ... | head``) quietly with 141. Anything else is a bug in melib: one
line says so and the status is 1. ``melib --debug COMMAND`` (or ``MELIB_DEBUG=1``) shows
the full traceback of every error instead.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
import zipfile

from melib import __version__


def _lazy(target: str):
    module_name, func_name = target.split(":")

    def run(args):
        return getattr(importlib.import_module(module_name), func_name)(args)

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="melib",
        description="Micro-expression reproduction suite: run the notebooks, build the book, "
        "make synthetic corpora and score predictions.",
    )
    parser.add_argument("--version", action="version", version=f"melib {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show Python tracebacks of errors (also: MELIB_DEBUG=1)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # -- reproduce -----------------------------------------------------------------
    rep = sub.add_parser(
        "reproduce",
        help="execute the notebooks with papermill, then build the book",
        description="Execute every notebook in notebooks/ with papermill and build the "
        "book. Notebooks whose executed copy is current are skipped (same source, "
        "parameters and melib version); --force redoes them.",
    )
    rep.add_argument(
        "--profile",
        default="book",
        choices=["smoke", "book", "full"],
        help="run size: smoke (CI, ~1 min each), book (what the book shows), "
        "full (paper scale, for a GPU). Default: book",
    )
    rep.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        default=None,
        help="run only these notebooks (name or unique prefix, e.g. 03_softnet)",
    )
    rep.add_argument(
        "-p",
        "--parameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a notebook parameter (YAML value), repeatable",
    )
    rep.add_argument(
        "--data-root",
        default=None,
        help="folder with your licensed datasets (one subfolder per dataset); default: the synthetic corpus",
    )
    rep.add_argument(
        "--out",
        default=None,
        help="where executed notebooks go (default: book/ for book and full, tests/notebooks/ for smoke)",
    )
    rep.add_argument(
        "--limit-steps",
        type=int,
        default=None,
        metavar="N",
        help="plumbing run: keep the profile's settings but train at most N optimiser steps, on the tiny "
        "corpus with at most 2 folds (copies go to _build/plumbing-PROFILE unless --out)",
    )
    rep.add_argument("--force", action="store_true", help="re-execute even current copies")
    rep.add_argument("--no-book", action="store_true", help="do not build the book afterwards")
    rep.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds (default: none)")
    rep.set_defaults(handler=_lazy("melib.reproduce:cli_reproduce"))

    # -- book ----------------------------------------------------------------------
    book = sub.add_parser("book", help="build the Jupyter Book HTML (offline, -W --keep-going)")
    book.add_argument("--no-strict", action="store_true", help="do not turn warnings into errors")
    book.add_argument(
        "--check",
        action="store_true",
        help="then open every page in headless Chromium and report missing "
        "images, broken links and rendering errors",
    )
    book.set_defaults(handler=_lazy("melib.book:cli_book"))

    # -- env -----------------------------------------------------------------------
    env = sub.add_parser("env", help="report versions, device, dlib model, TV-L1 and caches")
    env.add_argument("--json", action="store_true")
    env.set_defaults(handler=_lazy("melib.environment:cli_env"))

    # -- synth ---------------------------------------------------------------------
    syn = sub.add_parser("synth", help="generate a synthetic corpus in the real datasets' layouts")
    syn.add_argument("preset", choices=["tiny", "book", "full"])
    syn.add_argument("--out", required=True, help="output folder")
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--faces", default=None, help="folder of extra frontal portraits")
    syn.add_argument(
        "--datasets",
        nargs="+",
        default=None,
        help="only these datasets (casme_sq samm_lv smic_e_long casme2 samm smic_hs)",
    )
    syn.set_defaults(handler=_lazy("melib.data.synth:cli_synth"))

    # -- data ----------------------------------------------------------------------
    data = sub.add_parser("data", help="inspect datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    summ = data_sub.add_parser("summary", help="counts, durations and frames found")
    summ.add_argument(
        "dataset", choices=["casme_sq", "samm_lv", "smic_e_long", "casme2", "samm", "smic_hs", "megc2019"]
    )
    summ.add_argument("--root", required=True, help="the dataset's folder")
    summ.add_argument("--json", action="store_true")
    summ.set_defaults(handler=_lazy("melib.data.datasets:cli_summary"))

    # -- eval ----------------------------------------------------------------------
    ev = sub.add_parser("eval", help="score predictions with the MEGC metrics")
    ev_sub = ev.add_subparsers(dest="eval_command", required=True, metavar="TASK")
    sp = ev_sub.add_parser("spotting", help="MEGC interval spotting metric")
    sp.add_argument("--pred", required=True, help="CSV: video,onset,offset,type,score")
    sp.add_argument("--gt", required=True, help="CSV: video,onset,offset,type")
    sp.add_argument("--iou", type=float, default=0.5)
    _eval_options(
        sp,
        "--only-videos-with-type",
        "SOFTNet authors' variant: score a type only on videos containing it",
        "cli_eval_spotting",
    )
    rc = ev_sub.add_parser("recognition", help="accuracy, UF1 and UAR")
    rc.add_argument("--pred", required=True, help="CSV: sample,subject,dataset,true,predicted")
    _eval_options(
        rc,
        "--per-fold-mean",
        "average UF1/UAR over subjects instead of pooling (MEGC2019 pools)",
        "cli_eval_recognition",
    )
    return parser


def _eval_options(task: argparse.ArgumentParser, flag: str, flag_help: str, handler: str) -> None:
    """The last options of an ``eval`` task, its own switch then ``--json``, and its handler."""
    task.add_argument(flag, action="store_true", help=flag_help)
    task.add_argument("--json", action="store_true")
    task.set_defaults(handler=_lazy(f"melib.evaluation.cli:{handler}"))


_OS_HINTS = {
    errno.EACCES: "check the permissions, or choose another path",
    errno.EPERM: "check the permissions, or choose another path",
    errno.EROFS: "the file system is read-only: choose another path",
    errno.ENOSPC: "the disk is full: free space or choose another path",
    errno.ENOTDIR: "a file stands where a folder is expected",
    errno.EISDIR: "a folder stands where a file is expected",
    errno.EEXIST: "something is already there",
    errno.ENAMETOOLONG: "use a shorter path",
}


def describe_os_error(exc: OSError) -> str:
    """``<path>: <what the system says> (<the fix>)`` on one line."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    where = " -> ".join(str(name) for name in (exc.filename, exc.filename2) if name)
    hint = _OS_HINTS.get(exc.errno)
    return (f"{where}: " if where else "") + reason.lower() + (f" ({hint})" if hint else "")


def _debugging(argv) -> bool:
    return os.environ.get("MELIB_DEBUG", "") not in ("", "0")


def _quiet_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the exit flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if _debugging(argv) or getattr(args, "debug", False):
        return int(args.handler(args) or 0)
    name = f"melib {args.command}"
    try:
        result = args.handler(args)
        sys.stdout.flush()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _quiet_stdout()  # the reader (e.g. head) has all it wants
        return 141
    except UnicodeError as exc:
        print(f"{name}: error: a file is not UTF-8 text ({exc}); save it as UTF-8", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as exc:
        # Library errors already name the file, the field and the fix.
        text = describe_os_error(exc) if isinstance(exc, OSError) and exc.filename else exc
        print(f"{name}: error: {text}", file=sys.stderr)
        return 2
    except OSError as exc:  # permissions, read-only or full disks, a file for a folder
        print(f"{name}: error: {describe_os_error(exc)}", file=sys.stderr)
        return 2
    except zipfile.BadZipFile as exc:  # a damaged .xlsx or .npz
        print(f"{name}: error: a file is damaged or not of the expected kind ({exc})", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a bug in melib, not a mistake of the user
        print(
            f"{name}: internal error: {type(exc).__name__}: {exc} (a bug in melib: rerun "
            "with --debug or MELIB_DEBUG=1 for the traceback and report it)",
            file=sys.stderr,
        )
        return 1
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
