"""Headless Debian Chromium driven by Playwright (Python), for end-to-end tests against the lab hub.

Uses the Debian package's /usr/bin/chromium (never `playwright install`). Screenshots go to
`test-artifacts/screenshots/` at the repository root (git-ignored), or `$LAB_ARTIFACTS_DIR/screenshots`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_TIMEOUT_MS = 30_000


def artifacts_dir() -> Path:
    return Path(os.environ.get("LAB_ARTIFACTS_DIR", REPO_ROOT / "test-artifacts"))


def screenshots_dir() -> Path:
    folder = artifacts_dir() / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def launch_browser(executable: Path = CHROMIUM) -> Iterator[Browser]:
    """A headless Chromium, closed on exit."""
    if not executable.exists():
        raise RuntimeError(f"{executable} is missing: install the Debian package chromium (make setup)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), args=list(LAUNCH_ARGS), headless=True)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG as test-artifacts/screenshots/<name>.png and return its path."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "screenshot"
    path = screenshots_dir() / f"{safe}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def login(page: Page, username: str, password: str, *, base_url: str = "") -> None:
    """Fill in JupyterHub's login form and submit it; waits for the next page to load.

    `base_url` may be left empty when the page's context was created with `base_url=hub.url`.
    """
    page.goto(f"{base_url}/hub/login")
    page.fill("#username_input", username)
    page.fill("#password_input", password)
    with page.expect_navigation():
        page.click("#login_submit")


def choose_profile(page: Page, display_name: str) -> None:
    """Select a profile in the (KubeSpawner-shaped) options form by its visible display name."""
    label = page.locator("label.js-profile-label").filter(
        has=page.get_by_role("heading", name=display_name, exact=True)
    )
    label.click()
    radio = label.locator("input[type=radio][name=profile]")
    if not radio.is_checked():
        raise AssertionError(f"profile {display_name!r} did not get selected")


def start_server(page: Page) -> None:
    """Submit the spawn form (the "Start" button)."""
    page.get_by_role("button", name="Start").click()


def wait_for_lab(page: Page, timeout_ms: float = 60_000) -> None:
    """Wait until JupyterLab's shell has rendered (after the spawn-pending page redirects)."""
    page.wait_for_url(re.compile(r"/user/[^/]+/lab"), timeout=timeout_ms)
    page.wait_for_selector("#jp-main-dock-panel", timeout=timeout_ms)
