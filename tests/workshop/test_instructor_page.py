"""The instructor's page in a real browser: headless Chromium (Debian's) driven by Playwright.

Learners join and send results while the page is open; they appear without a reload, with the exercise counts,
the most common reason for "Not yet" and, eleven minutes later by the page's clock, who is stuck. A screenshot
is kept in build/test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import httpx
import pytest

from kvlab.workshop import learner

from runners import kvlab

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts"


@pytest.fixture
def page():
    if not Path(CHROMIUM).exists():
        message = "no Chromium: install Debian's `chromium` package (CI does)"
        if os.environ.get("KVLAB_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        try:
            yield browser.new_page(viewport={"width": 1100, "height": 620})
        finally:
            browser.close()


def send(state: Path, **fields) -> None:
    """A result as a learner's sender posts it (with the token `kvlab workshop join` saved)."""
    config = learner.joined(state)
    record = {"id": os.urandom(6).hex(), "title": "", "message": "", "time": "2026-12-03T10:00:00+00:00", **fields}
    answer = httpx.post(f"{config['service']}/api/results", json={"results": [record]},
                        headers={"Authorization": f"Bearer {config['token']}"})
    assert answer.status_code == 200, answer.text


def test_results_appear_on_the_open_page_without_a_reload(service, page, tmp_path):
    ada, bob = tmp_path / "ada", tmp_path / "bob"
    kvlab("workshop", "join", service.join_url, "--name", "Ada", state=ada)
    send(ada, lesson="00", exercise="ex1", title="Create a SecretClient", status="correct")

    page.clock.install()
    page.goto(service.instructor_url)
    assert page.url == f"{service.base}/instructor"  # the key left the address bar
    page.wait_for_selector("#connection.live")
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads
    cell = page.locator("tr[data-learner='Ada'] td[data-exercise='00.ex1']")
    assert cell.get_attribute("data-best") == "correct"

    kvlab("workshop", "join", service.join_url, "--name", "Bob", state=bob)
    page.locator("tr[data-learner='Bob']").wait_for()
    for state, port in ((ada, 19002), (bob, 19004)):  # the same stumble, told with each learner's own vault URL
        send(state, lesson="02", exercise="ex1", title="A vault per environment", status="incorrect",
             message=f"https://kv-sales-prod.localhost:{port}/ has no role assignment for the learner.\n"
                     "Look at the Access control tab.")
    send(ada, lesson="02", exercise="ex1", status="correct")

    page.locator("tr[data-learner='Bob'] td[data-exercise='02.ex1'][data-status='incorrect']").wait_for()
    page.locator("tr[data-learner='Ada'] td[data-exercise='02.ex1'][data-best='correct']").wait_for()
    assert page.locator("tfoot td[data-exercise='02.ex1']").inner_text() == "1/2"
    assert page.locator("#reasons li").first.inner_text() == (
        "2 learners on 02.ex1: https://kv-sales-prod.localhost:19002/ has no role assignment for the learner.")
    assert page.locator("#stuck").inner_text() == "nobody"

    page.clock.fast_forward("11:00")  # eleven minutes on the page's clock: Bob solved nothing since he joined
    page.locator("#stuck li", has_text="Bob").wait_for()
    assert re.fullmatch(r"Bob: 1[01] min without progress, last check 1[01] min ago on 02\.ex1",  # whole seconds
                        page.locator("#stuck li", has_text="Bob").inner_text())
    assert page.locator("#stuck li").count() == 1  # Ada's latest check passed: reading on, not stuck
    assert page.evaluate("window.loadedOnce") is True

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "instructor-page.png"), full_page=True)
