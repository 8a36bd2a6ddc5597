"""A real browser: `streamlit run app.py` on loopback, driven in headless Chromium.

Explore (select a song, six players, a map click), and a panel study end to end: rate one pair
blind on Listen & rate, refresh and resume, see the Report gain figures. Screenshots go to
test-artifacts/ (explore.png, rate.png, report.png).
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settled(page, timeout_ms: float = 60_000) -> None:
    """Wait until Streamlit's script run is over (its status widget shows a running icon meanwhile)."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stStatusWidgetRunningIcon")).to_have_count(0, timeout=timeout_ms)


@contextmanager
def serve(catalogue: Path) -> Iterator[str]:
    """`streamlit run app.py` on ``catalogue`` at a free loopback port; yields the base URL."""
    port = free_port()
    env = {**os.environ, "SONGSIM_CATALOGUE": str(catalogue)}
    log = tempfile.TemporaryFile()  # a file, not a pipe: nobody reads it while the test runs, so a pipe could fill up
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        server.wait(timeout=20)
        log.seek(0)
        pytest.fail(f"streamlit did not start: {log.read().decode(errors='replace')[-2000:]}")
    try:
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


@pytest.fixture
def served_app(built_catalogue):
    with serve(built_catalogue) as url:
        yield url


STUDY = "e2e-panel"
STUDY_SPACES = ["handcrafted", "random"]


@pytest.fixture
def study_catalogue(built_catalogue, tmp_path) -> Path:
    """A private copy of the built catalogue holding a small two-space study, so that the
    session fixture (served by the other tests) stays study-free."""
    from songsim.studies.study import create_study

    catalogue = Path(shutil.copytree(built_catalogue, tmp_path / "catalogue"))
    create_study(catalogue, STUDY, STUDY_SPACES, n_queries=2, k=2, raters_per_pair=1, panel_size=1)
    return catalogue


def open_app(page, url: str) -> None:
    """Open the entry page and wait for app.py's own navigation (a deep link works too: see test_a_rater_link_opens_on_a_fresh_server)."""
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.get_by_role("link", name="Listen & rate", exact=True)).to_have_count(1, timeout=120_000)


def screenshot(page, name: str) -> None:
    """The whole page: Streamlit scrolls inside its main container, so the viewport grows to fit it."""
    settled(page)
    size = page.viewport_size
    height = page.get_by_test_id("stMain").evaluate("el => el.scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
    page.wait_for_timeout(500)  # relayout (plotly redraws at the new size)
    page.screenshot(path=str(ARTIFACTS / name))
    page.set_viewport_size(size)


def dataframe_rows(frame) -> list[list[str]]:
    """The cells of an st.dataframe, read from the accessible table inside its canvas."""
    return frame.locator("canvas table tbody tr").evaluate_all(
        "rows => rows.map(row => [...row.cells].map(cell => cell.textContent))"
    )


def wait_for_rows(frame, expected: list[list[str]], timeout_s: float = 60.0) -> list[list[str]]:
    """The cells of an st.dataframe once they are ``expected`` (or whatever they are after
    ``timeout_s``): the grid draws its rows after it becomes visible, so a read right away can
    find none."""
    deadline = time.monotonic() + timeout_s
    rows = dataframe_rows(frame)
    while rows != expected and time.monotonic() < deadline:
        frame.page.wait_for_timeout(250)
        rows = dataframe_rows(frame)
    return rows


def test_select_a_song_and_see_six_players(served_app):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.goto(served_app)
        expect(page.get_by_role("heading", name="Explore")).to_have_count(1, timeout=120_000)
        expect(page.locator("audio")).to_have_count(6, timeout=120_000)
        query_label = page.locator("[data-testid='stMarkdownContainer'] strong").first

        search = page.get_by_role("combobox", name="Search the catalogue by title or artist")
        search.click()
        search.fill("Drums Artist 2")
        expect(page.get_by_role("option").first).to_contain_text("Drums Artist 2", timeout=60_000)
        page.get_by_role("option").first.click()
        expect(query_label).to_have_text(re.compile(r"^Drums Artist 2 — Song"), timeout=60_000)
        expect(page.locator("audio")).to_have_count(6, timeout=60_000)
        expect(page.locator(".js-plotly-plot")).to_have_count(1, timeout=60_000)
        page.wait_for_timeout(1500)  # let plotly finish drawing before the screenshot
        page.screenshot(path=str(ARTIFACTS / "explore.png"), full_page=True)
        sources = page.locator("audio").evaluate_all("els => els.map(e => e.src)")
        assert all(src.startswith("http") for src in sources)

        # a click on a map point makes it the query (traces are genres in order: bass first)
        settled(page)
        page.locator(".js-plotly-plot .scatterlayer .trace").first.locator(".point").nth(2).click(force=True)
        expect(query_label).to_have_text(re.compile(r"^Bass Artist \d — Song"), timeout=60_000)
        expect(page.locator("audio")).to_have_count(6, timeout=60_000)
        browser.close()



def test_rate_one_pair_and_see_the_report_change(study_catalogue):
    """A rater signs in, plays and rates one pair blind, survives a refresh; the report gains figures."""
    from playwright.sync_api import expect, sync_playwright

    from songsim.studies.panel import open_session
    from songsim.studies.ratings import latest_ratings, load_ratings
    from songsim.studies.render import display_spaces
    from songsim.studies.report import compute_report
    from songsim.studies.study import load_study

    study = load_study(study_catalogue, STUDY)
    secret = {*STUDY_SPACES, *(track for q in study.queries for track in (q.query_id, *q.pool))}
    ARTIFACTS.mkdir(exist_ok=True)
    with serve(study_catalogue) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        main = page.get_by_test_id("stMain")
        errors = main.get_by_test_id("stException")
        open_app(page, url)

        # the report before anyone rated
        page.goto(f"{url}/report")
        expect(main.get_by_text("Nobody has rated this study yet")).to_have_count(1, timeout=60_000)
        settled(page)
        expect(main.get_by_test_id("stDataFrame")).to_have_count(0)
        expect(errors).to_have_count(0)

        # sign in: the study, the rater and their new token go to the URL
        page.goto(f"{url}/rate")
        main.get_by_role("textbox", name="Your name or rater id").fill("ada")
        main.get_by_role("button", name="Start rating").click()
        progress = main.get_by_test_id("stProgress")
        expect(progress).to_contain_text(f"0 of {study.n_pairs} pairs rated", timeout=60_000)
        expect(page).to_have_url(re.compile(rf"/rate\?.*study={STUDY}.*rater=ada"))
        first = open_session(study_catalogue, STUDY, "ada").queue[0]
        expect(main.get_by_role("button", name=re.compile(r"^▶ Play candidate \d+$"))).to_have_count(len(first.candidates))
        settled(page)
        shown = main.inner_text()
        leaked = sorted(word for word in secret if re.search(rf"\b{re.escape(word)}\b", shown))
        assert not leaked, f"the rating page must be blind, yet it shows {leaked}"
        sources = main.locator("audio").evaluate_all("els => els.map(e => e.src)")
        assert len(sources) == 1 and not any(word in sources[0] for word in secret)  # the query's player

        # a candidate can be rated only once it has been played
        broad = main.get_by_role("radiogroup").first
        expect(broad.get_by_role("radio").first).to_be_disabled()
        main.get_by_role("button", name="▶ Play candidate 1").click()
        expect(broad.get_by_role("radio").first).to_be_enabled(timeout=60_000)
        expect(main.locator("audio")).to_have_count(2)  # the query and the candidate just played
        broad.get_by_text("2 · very similar").click()
        main.get_by_role("button", name="Save rating").first.click()
        expect(progress).to_contain_text(f"1 of {study.n_pairs} pairs rated", timeout=60_000)
        expect(main.get_by_text("Candidate 1 · ✓ very similar")).to_have_count(1)
        expect(main.get_by_role("button", name="Revise rating")).to_have_count(1)
        screenshot(page, "rate.png")
        expect(errors).to_have_count(0)
        saved = latest_ratings(load_ratings(study_catalogue, study=STUDY).events)
        assert saved[["rater", "query_id", "broad"]].values.tolist() == [["ada", first.query_id, 2]]

        # a browser refresh resumes: no sign-in form, the same progress and the saved score
        page.reload()
        expect(progress).to_contain_text(f"1 of {study.n_pairs} pairs rated", timeout=60_000)
        expect(main.get_by_text("Candidate 1 · ✓ very similar")).to_have_count(1)
        expect(main.get_by_role("button", name="Start rating")).to_have_count(0)
        expect(main.get_by_role("textbox", name="Your name or rater id")).to_have_count(0)

        # the report now has figures: the page's table is the report of ratings.csv
        page.goto(f"{url}/report")
        table = main.get_by_test_id("stDataFrame").first
        expected = display_spaces(compute_report(study_catalogue, STUDY))
        # the grid draws its rows after it appears: wait for them, not for the grid
        expect(table.locator("canvas table tbody tr")).to_have_count(len(expected), timeout=120_000)
        expect(main.locator(".js-plotly-plot")).to_have_count(2, timeout=60_000)
        expect(main.get_by_text("Nobody has rated this study yet")).to_have_count(0)
        rows = wait_for_rows(table, [[str(v) for v in row] for row in expected.itertuples(index=False)])
        assert rows == [[str(v) for v in row] for row in expected.itertuples(index=False)]
        assert [row[0] for row in rows] == STUDY_SPACES and any(float(row[2][:5]) > 0 for row in rows), rows
        screenshot(page, "report.png")
        expect(errors).to_have_count(0)
        browser.close()


def test_a_rater_link_opens_on_a_fresh_server(study_catalogue):
    from playwright.sync_api import expect, sync_playwright

    from songsim.studies.identity import invite, rating_link

    with serve(study_catalogue) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        main = page.get_by_test_id("stMain")
        page.goto(rating_link(STUDY, "bo", invite(study_catalogue, STUDY, "bo")[1], url))  # the server's first request
        progress, errors = main.get_by_test_id("stProgress"), main.get_by_test_id("stException")
        expect(progress.or_(errors).first).to_have_count(1, timeout=120_000)  # whichever comes first
        assert errors.count() == 0, errors.first.inner_text()[:300]
        expect(progress).to_contain_text(" pairs rated")
        settled(page)
        expect(errors).to_have_count(0)
        browser.close()


def test_the_rating_page_html_names_no_track(study_catalogue):
    from playwright.sync_api import expect, sync_playwright

    from songsim.studies.identity import invite, rating_link
    from songsim.studies.study import load_study

    study = load_study(study_catalogue, STUDY)
    with serve(study_catalogue) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        open_app(page, url)
        page.goto(rating_link(STUDY, "cy", invite(study_catalogue, STUDY, "cy")[1], url))
        main = page.get_by_test_id("stMain")
        expect(main.get_by_role("button", name="▶ Play candidate 1")).to_have_count(1, timeout=60_000)
        settled(page)
        html = main.inner_html()
        browser.close()
    candidates = {track for q in study.queries for track in q.pool}
    assert not sorted(track for track in candidates if track in html)
