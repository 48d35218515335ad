"""Screenshots of the Console's main pages for the README: `python -m tests.screenshots [OUT_DIR]`.

Starts a Satchel on loopback with a fresh data dir, fills it with a few stores, records and a dataset, and
saves PNGs (1280 px wide; a phone one at 390 px) under docs/screenshots/ with Debian's Chromium. Not a test:
run it by hand after changing how the Console looks. When pngquant is installed (`apt-get install pngquant`)
the PNGs are cut to 256 colours, a third of their size.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

from playwright.sync_api import Browser, FloatRect, Page, ViewportSize, sync_playwright

from tests.harness.server import Server, start_server, stop_server

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
WIDE: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}


def picture(width: int, height: int) -> bytes:
    """A PNG of a soft gradient with bands, so the preview has something to fit (no image library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            band = 30 if (x // 40 + y // 40) % 2 else 0
            rows += bytes((40 + x * 160 // width + band, 90 + y * 120 // height, 200 - band))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def seed(server: Server) -> tuple[str, str]:
    """Stores, records and a dataset as a small crawl leaves them; the ids of the store and dataset shown."""
    with server.client() as api:
        store = api.post("/key-value-stores", params={"name": "product-crawl"}).json()["data"]
        records = f"/key-value-stores/{store['id']}/records"
        api.put(f"{records}/INPUT", json={"startUrls": [{"url": "https://shop.example/"}], "maxPages": 500})
        api.put(f"{records}/OUTPUT", json={"pages": 412, "products": 3877, "errors": 3})
        api.put(f"{records}/SDK_CRAWLER_STATISTICS_0", json={"requestsFinished": 412, "requestsFailed": 3})
        api.put(f"{records}/hero-image.png", content=picture(960, 540), headers={"content-type": "image/png"})
        api.put(
            f"{records}/README.txt",
            content=b"Crawl of shop.example, nightly.\n",
            headers={"content-type": "text/plain; charset=utf-8"},
        )
        for n in range(1, 4):
            page = f"<html><body><h1>Product {n}</h1></body></html>".encode()
            api.put(f"{records}/page-{n:04d}.html", content=page, headers={"content-type": "text/html"})
        for name in ("crawler-state", "exports", "screenshots", "settings"):
            made = api.post("/key-value-stores", params={"name": name}).json()["data"]
            api.put(f"/key-value-stores/{made['id']}/records/STATE", json={"store": name, "ok": True})
        api.post("/key-value-stores")  # an unnamed one, as a run leaves
        dataset = api.post("/datasets", params={"name": "products"}).json()["data"]
        items = [
            {
                "url": f"https://shop.example/p/{n}",
                "title": f"Product {n}",
                "price": 9.5 + n,
                "inStock": n % 3 != 0,
            }
            for n in range(1, 41)
        ]
        api.post(f"/datasets/{dataset['id']}/items", json=items)
        return store["id"], dataset["id"]


def sign_in(page: Page, token: str) -> None:
    page.goto("/console/login")
    page.fill("#token", token)
    page.click("button:has-text('Sign in')")
    page.wait_for_url("**/console/key-value-stores")


def shoot(browser: Browser, server: Server, out: Path, store: str, dataset: str) -> list[Path]:
    saved = []
    shots = [
        ("store-list", WIDE, "/console/key-value-stores?sort=name"),
        ("store-records", WIDE, f"/console/key-value-stores/{store}?key=hero-image.png"),
        ("store-settings", WIDE, f"/console/key-value-stores/{store}?tab=settings"),
        ("store-api", WIDE, f"/console/key-value-stores/{store}?tab=api"),
        ("dataset-items", WIDE, f"/console/datasets/{dataset}"),
        ("phone-store", PHONE, f"/console/key-value-stores/{store}?key=OUTPUT"),
    ]
    for name, size, path in shots:
        context = browser.new_context(base_url=server.base_url, viewport=size, device_scale_factor=1)
        page = context.new_page()
        sign_in(page, server.token)
        page.goto(path)
        page.wait_for_load_state("networkidle")
        target = out / f"{name}.png"
        # Whole pages, but a phone's only down to its first records (it goes on a long way).
        clip: FloatRect | None = (
            {"x": 0, "y": 0, "width": size["width"], "height": 1400} if size is PHONE else None
        )
        page.screenshot(path=str(target), full_page=True, clip=clip)
        context.close()
        saved.append(target)
    return saved


def compress(paths: list[Path]) -> None:
    pngquant = shutil.which("pngquant")
    if pngquant is None:
        return
    for path in paths:
        subprocess.run(
            [pngquant, "--force", "--skip-if-larger", "--strip", "--output", str(path), "256", str(path)],
            check=False,  # 99: the result would not have been smaller; the original stays
        )


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    out.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("Chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            store, dataset = seed(server)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                saved = shoot(browser, server, out, store, dataset)
                browser.close()
        finally:
            stop_server(server)
    compress(saved)
    for path in saved:
        print(f"{path} {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
