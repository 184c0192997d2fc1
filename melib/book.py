"""``melib book``: build the Jupyter Book from the stored executions, offline.

``_config.yml`` sets ``execute_notebooks: off``: papermill (``melib reproduce``) executes,
the book only renders what was stored.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from melib.runtime import atomic_path, project_root

RUN_TIMES_PAGE = Path("book") / "generated" / "run_times.md"


def build_book(strict: bool = True, builder: str = "html") -> int:
    root = project_root()
    write_run_times_page(root)
    jb = Path(sys.executable).with_name("jupyter-book")
    command = [str(jb) if jb.exists() else "jupyter-book", "build", str(root), "--builder", builder]
    if strict:
        command += ["-W", "--keep-going"]
    print("building the book:", " ".join(command[1:]), flush=True)
    completed = subprocess.run(command, cwd=root)
    if completed.returncode == 0:
        print(f"book written to {root / '_build' / 'html' / 'index.html'}")
    else:
        print("the book build failed: see the warnings above", file=sys.stderr)
    return completed.returncode


# --------------------------------------------------------------------------- results


def glue_results(paper: str, tables: dict | None = None, numbers: dict | None = None, digits: int = 4):
    """Hand a notebook's headline tables and numbers to the book's results page.

    Each item is glued (myst-nb) under ``<paper>_<name>`` without being displayed; the
    results page pastes it with ``{glue}`` / ``{glue:text}`` and the notebook's path, so
    no number there is typed by hand. Returns the list of what was glued, for the
    reader of the notebook.
    """
    import pandas as pd
    from myst_nb import glue

    rows = []
    for name, table in (tables or {}).items():
        key = f"{paper}_{name}"
        glue(key, table.round(digits), display=False)
        rows.append({"key": key, "what": f"table, {table.shape[0]} rows x {table.shape[1]} columns"})
    for name, value in (numbers or {}).items():
        key = f"{paper}_{name}"
        value = round(float(value), digits)
        glue(key, value, display=False)
        rows.append({"key": key, "what": f"{value:g}"})
    return pd.DataFrame(rows, columns=["key", "what"]).set_index("key")


def spotting_numbers(results: dict) -> dict:
    """``{<dataset>_<type>_f1: F1}`` from ``{dataset: SpottingResult}`` (macro, micro, overall)."""
    return {
        f"{name}_{kind}_f1": float(res.table.loc[kind, "F1"])
        for name, res in results.items()
        for kind in ("macro", "micro", "overall")
        if kind in res.table.index
    }


def recognition_numbers(scores: dict, row: str = "all") -> dict:
    """``{<protocol>_<metric>: value}`` from ``{protocol: score table}`` (one row, lower-case keys)."""
    return {
        f"{name}_{metric.lower()}": float(table.loc[row, metric])
        for name, table in scores.items()
        for metric in ("accuracy", "UF1", "UAR")
        if metric in table.columns
    }


def run_times(project: str | Path | None = None) -> list[dict]:
    """The duration papermill recorded for every stored execution (smoke and book)."""
    root = Path(project or project_root())
    rows = []
    for profile, folder in (("smoke", root / "tests" / "notebooks"), ("book", root / "book")):
        for path in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
            meta = json.loads(path.read_text()).get("metadata", {})
            duration = meta.get("papermill", {}).get("duration")
            if duration is not None:
                rows.append({"notebook": path.stem, "profile": profile, "seconds": float(duration)})
    return rows


def run_times_markdown(project: str | Path | None = None) -> str:
    """A Markdown table of the stored executions' run times, one row per notebook."""
    rows = run_times(project)
    names = sorted({r["notebook"] for r in rows})
    seconds = {(r["notebook"], r["profile"]): r["seconds"] for r in rows}

    def cell(name, profile):
        value = seconds.get((name, profile))
        if value is None:
            return "not executed"
        return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"

    lines = [
        "<!-- written by `melib book` from the stored executions' papermill metadata;",
        "     do not edit by hand -->",
        "",
        "| Notebook | `smoke` | `book` |",
        "|---|---|---|",
    ]
    lines += [f"| `{name}` | {cell(name, 'smoke')} | {cell(name, 'book')} |" for name in names]
    return "\n".join(lines) + "\n"


def write_run_times_page(project: str | Path | None = None) -> Path:
    root = Path(project or project_root())
    target = root / RUN_TIMES_PAGE
    text = run_times_markdown(root)
    if not target.exists() or target.read_text() != text:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            Path(tmp).write_text(text)
    return target


def cli_book(args) -> int:
    status = build_book(strict=not args.no_strict)
    if status == 0 and args.check:
        problems = check_built_pages()
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"checked the pages in headless Chromium: {len(problems)} problem(s)")
        status = 1 if problems else 0
    return status


# --------------------------------------------------------------------------- page check

_PAGE_PROBE = """
const broken = [];
for (const img of document.images) {
  if (!img.complete || img.naturalWidth === 0) broken.push(img.getAttribute('src'));
}
const links = [];
for (const a of document.querySelectorAll('a[href]')) links.push(a.getAttribute('href'));
const ids = Array.from(document.querySelectorAll('[id]')).map(e => e.id);
return {broken: broken, links: links, ids: ids,
        title: document.title, text: document.body ? document.body.innerText.length : 0};
"""


def _chromium_driver():
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not binary or not driver_path:
        raise FileNotFoundError(
            "headless Chromium is needed to check the book: install Debian's packages "
            "with `apt-get install chromium chromium-driver`"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1600",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=options)


def check_built_pages(
    html_dir: str | Path | None = None, screenshots: dict[str, str | Path] | None = None
) -> list[str]:
    """Open every built page in headless Chromium; return the problems found.

    A problem is an image that did not load, a link to a page or anchor of the book
    that does not exist, a JavaScript error, or a local resource that failed to load.
    Remote resources (a CDN) are not reachable offline and are not counted.
    ``screenshots`` maps a page (relative path) to a PNG file to write.
    """
    from urllib.parse import unquote, urldefrag, urlparse

    html_dir = Path(html_dir or project_root() / "_build" / "html").resolve()
    pages = sorted(
        p
        for p in html_dir.rglob("*.html")
        if not p.relative_to(html_dir).parts[0].startswith(("_static", "_sources"))
    )
    if not pages:
        return [f"{html_dir}: no pages; build the book first (melib book)"]
    problems: list[str] = []
    anchors: dict[Path, set[str]] = {}
    pending_links: list[tuple[Path, str]] = []
    driver = _chromium_driver()
    try:
        for page in pages:
            rel = page.relative_to(html_dir)
            driver.get(page.as_uri())
            # index.html redirects to the first chapter: resolve links from where we landed
            landed = Path(unquote(urlparse(driver.current_url).path))
            if landed != page and landed.is_file():
                continue
            probe = driver.execute_script(_PAGE_PROBE)
            anchors[page] = set(probe["ids"])
            for src in probe["broken"]:
                problems.append(f"{rel}: image did not load: {src}")
            if probe["text"] < 20:
                problems.append(f"{rel}: the page rendered (almost) no text")
            for entry in driver.get_log("browser"):
                message = entry.get("message", "")
                remote = "http://" in message or "https://" in message
                if entry.get("level") == "SEVERE" and not remote:
                    problems.append(f"{rel}: browser error: {message}")
            for href in probe["links"]:
                pending_links.append((page, href))
            if screenshots and str(rel) in screenshots:
                driver.save_screenshot(str(screenshots[str(rel)]))
    finally:
        driver.quit()

    for page, href in pending_links:
        parsed = urlparse(href)
        if parsed.scheme or href.startswith(("mailto:", "javascript:")):
            continue  # external links cannot be checked offline
        target, fragment = urldefrag(href)
        path = (page.parent / unquote(target)).resolve() if target else page
        if path.is_dir():
            path = path / "index.html"
        rel = page.relative_to(html_dir)
        if not path.exists():
            problems.append(f"{rel}: broken link {href}")
        elif fragment and path in anchors and unquote(fragment) not in anchors[path]:
            problems.append(f"{rel}: link to a missing anchor {href}")
    return problems
