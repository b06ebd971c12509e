"""What the browser and page tests share: Debian's chromium, signing in (a form post of this site,
in a browser or a TestClient), screenshots under var/screenshots/."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
HTML = {"Accept": "text/html,application/xhtml+xml"}
ORIGIN = "http://testserver"  # the TestClient's site: what a browser sends with our pages' forms


def ensure_chromium() -> None:
    """Debian's chromium, installed when missing and we may (root with apt-get); skip otherwise."""
    if CHROMIUM.exists():
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, capture_output=True,
                           timeout=900, check=False)
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing and could not be installed (apt-get install chromium, as root): "
                    "the browser tests need Debian's chromium")


def signed_in(browser: Browser, base: str, token: str, viewport: dict[str, int] | None = None) -> Page:
    """A browser page signed in through the sign-in form, on the home page."""
    context = browser.new_context(base_url=base, locale="zh-CN", accept_downloads=True,
                                  viewport=viewport or {"width": 1280, "height": 900})
    page = context.new_page()
    page.goto("/")
    page.fill("#token", token)
    page.click("form[action='/'] button[type=submit]")
    page.wait_for_url("**/home")
    return page


def screenshot(page: Page, name: str) -> None:
    """The whole page, as var/screenshots/NAME (NAME may name a folder: "inspector/7-trace.png")."""
    path = SCREENSHOTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)


def sign_in(client: TestClient, token: str) -> None:
    response = client.post("/", data={"token": token}, headers={**HTML, "Origin": ORIGIN}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/home", response.text
