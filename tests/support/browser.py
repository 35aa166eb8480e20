"""Headless Chromium (Debian's package) driven by Playwright, for tests that open the pages synthfarm writes
and look at them as a person would. Nothing is downloaded: Playwright launches the system's chromium."""
import contextlib
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (.ci/run installs it)")


@contextlib.contextmanager
def page(width=1280, height=1000):
    """A Playwright page in headless Chromium; ``page.errors`` collects console errors and uncaught exceptions."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            tab = browser.new_page(viewport={"width": width, "height": height})
            tab.errors = []
            tab.on("console", lambda message: message.type == "error" and tab.errors.append(message.text))
            tab.on("pageerror", lambda error: tab.errors.append(str(error)))
            yield tab
        finally:
            browser.close()
