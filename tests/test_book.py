"""The book builds offline with no warnings, and every page renders in a real browser."""

from __future__ import annotations

import os
import shutil

import pytest
from conftest import PROJECT_ROOT


def _need_chromium():
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    message = "headless Chromium is missing: apt-get install chromium chromium-driver"
    if os.environ.get("CI"):
        pytest.fail(message + " (.ci/run installs it)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def built_book():
    from melib.book import build_book

    assert build_book(strict=True) == 0, "jupyter-book build -W --keep-going reported warnings"
    return PROJECT_ROOT / "_build" / "html"


def test_book_builds_without_warnings(built_book):
    assert (built_book / "index.html").is_file()
    assert (built_book / "book" / "intro.html").is_file()


def test_every_page_renders_in_headless_chromium(built_book, tmp_path):
    _need_chromium()
    from melib.book import check_built_pages

    # The front page, one paper page and the results page, kept for a person to look at.
    shot_dir = PROJECT_ROOT / "_build" / "screenshots"
    shot_dir.mkdir(parents=True, exist_ok=True)
    shots = {
        page: shot_dir / (page.split("/")[-1].replace(".html", ".png"))
        for page in ("book/intro.html", "book/03_softnet.html", "book/results.html")
    }
    problems = check_built_pages(built_book, screenshots=shots)
    assert not problems, "\n".join(problems)
    for page, shot in shots.items():
        assert shot.stat().st_size > 10_000, f"{page}: the screenshot is (almost) blank"


def test_page_check_catches_a_missing_image_and_a_broken_link(tmp_path):
    _need_chromium()
    from melib.book import check_built_pages

    (tmp_path / "page.html").write_text(
        "<html><body><p>A page with enough text to count as rendered.</p>"
        "<img src='missing.png'><a href='nowhere.html'>x</a>"
        "<a href='#absent'>y</a></body></html>"
    )
    problems = check_built_pages(tmp_path)
    assert any("image did not load: missing.png" in p for p in problems)
    assert any("broken link nowhere.html" in p for p in problems)
    assert any("missing anchor #absent" in p for p in problems)
