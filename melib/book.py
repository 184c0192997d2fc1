"""``melib book``: build the Jupyter Book from the stored executions, offline.

``_config.yml`` sets ``execute_notebooks: off``: papermill (``melib reproduce``) executes,
the book only renders what was stored.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from melib.runtime import project_root


def build_book(strict: bool = True, builder: str = "html") -> int:
    root = project_root()
    jb = Path(sys.executable).with_name("jupyter-book")
    command = [str(jb) if jb.exists() else "jupyter-book", "build", str(root),
               "--builder", builder]
    if strict:
        command += ["-W", "--keep-going"]
    print("building the book:", " ".join(command[1:]), flush=True)
    completed = subprocess.run(command, cwd=root)
    if completed.returncode == 0:
        print(f"book written to {root / '_build' / 'html' / 'index.html'}")
    else:
        print("the book build failed: see the warnings above", file=sys.stderr)
    return completed.returncode


def cli_book(args) -> int:
    return build_book(strict=not args.no_strict)
