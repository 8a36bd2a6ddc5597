"""A real browser: `streamlit run app.py` on loopback, driven in headless Chromium."""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
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


@pytest.fixture
def served_app(built_catalogue):
    port = free_port()
    env = {**os.environ, "SONGSIM_CATALOGUE": str(built_catalogue)}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
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
        pytest.fail(f"streamlit did not start: {server.stdout.read().decode()[-2000:]}")
    yield url
    server.terminate()
    server.wait(timeout=20)


def test_select_a_song_and_see_six_players(served_app):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.goto(served_app)
        expect(page.get_by_role("heading", name="Explore")).to_be_visible(timeout=120_000)
        expect(page.locator("audio")).to_have_count(6, timeout=120_000)

        search = page.get_by_role("combobox", name="Search the catalogue by title or artist")
        search.click()
        search.fill("Drums Artist 2")
        page.get_by_role("option").first.click()
        expect(page.get_by_text("Drums Artist 2 — Song", exact=False).first).to_be_visible(timeout=60_000)
        expect(page.locator("audio")).to_have_count(6, timeout=60_000)
        expect(page.locator(".js-plotly-plot")).to_have_count(1, timeout=60_000)
        page.wait_for_timeout(1500)  # let plotly finish drawing before the screenshot
        page.screenshot(path=str(ARTIFACTS / "explore.png"), full_page=True)
        sources = page.locator("audio").evaluate_all("els => els.map(e => e.src)")
        assert all(src.startswith("http") for src in sources)

        # a click on a map point makes it the query (traces are genres in order: bass first)
        page.locator(".js-plotly-plot .scatterlayer .trace").first.locator(".point").nth(2).click(force=True)
        query_label = page.locator("[data-testid='stMarkdownContainer'] strong").first
        expect(query_label).to_have_text(re.compile(r"^Bass Artist \d — Song"), timeout=60_000)
        expect(page.locator("audio")).to_have_count(6, timeout=60_000)
        browser.close()
