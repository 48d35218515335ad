"""Debian's Chromium through Playwright, and what the Console's browser tests share: signing in, a user of
one's own, a PNG to upload."""

from __future__ import annotations

import contextlib
import shutil
import struct
import time
import zlib
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# On a module (`pytestmark = needs_chromium`) or a test: skipped only where no Chromium is installed.
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"
)


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page: Page, token: str) -> None:
    page.goto("/console")
    assert "/console/login" in page.url
    page.fill("#token", token)
    page.click("button:has-text('Sign in')")
    page.wait_for_url("**/console/key-value-stores")


def png(width: int, height: int) -> bytes:
    """A real PNG (solid red) the browser can decode, built by hand so the tests need no image library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def wait_until(page: Page, expression: str, timeout: float = 10.0) -> None:
    """Wait until a JavaScript expression is true on the page. Unlike page.wait_for_function, whose polling
    evaluates the expression with eval inside the page, this asks from outside it (as page.evaluate does),
    which the Console's Content-Security-Policy (no 'unsafe-eval') does not refuse."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout:g} s: {expression}")
        time.sleep(0.02)
