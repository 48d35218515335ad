"""The Console on a phone-sized screen (390 x 844, as an iPhone 12 to 15), in Chromium through Playwright
against a real server: no page is wider than the screen, the navigation folds behind a Menu button that
works without script, the record list stacks, and a record's preview comes before the list, fitted. And on a
desktop screen, a key as long as keys go wraps instead of widening the page.
Skipped only when no Chromium is installed (`.ci/run` installs it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.conftest import Server, start_server, stop_server
from tests.harness.browser import needs_chromium, png, sign_in, wait_until

pytestmark = needs_chromium
WIDTH = 390
DESKTOP = 1280
LONGEST_KEY = "x" * 256  # one unbroken word


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("console-mobile") / "data")
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def made(server: Server) -> dict[str, str]:
    """A store with long keys, a wide image and JSON, a dataset with wide items, a queue."""
    with server.client() as api:
        store = api.post("/key-value-stores", params={"name": "a-rather-long-store-name-on-a-phone"}).json()
        sid = store["data"]["id"]
        api.put(
            f"/key-value-stores/{sid}/records/wide.png",
            content=png(1600, 30),
            headers={"content-type": "image/png"},
        )
        api.put(f"/key-value-stores/{sid}/records/OUTPUT", json={"long": "y" * 300, "list": list(range(60))})
        for key in ("k" * 120, LONGEST_KEY):
            api.put(
                f"/key-value-stores/{sid}/records/{key}",
                content=b"long key",
                headers={"content-type": "text/plain"},
            )
        dataset = api.post("/datasets", params={"name": "phone-items"}).json()["data"]["id"]
        api.post(f"/datasets/{dataset}/items", json=[{f"field{i}": "x" * 40 for i in range(10)}] * 3)
        queue = api.post("/request-queues", params={"name": "phone-queue"}).json()["data"]["id"]
        api.post(f"/request-queues/{queue}/requests", json={"url": "https://example.com/" + "p" * 200})
    return {"store": sid, "dataset": dataset, "queue": queue}


@pytest.fixture
def phone(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(base_url=server.base_url, viewport={"width": WIDTH, "height": 844})
    page = context.new_page()
    sign_in(page, server.token)
    yield page
    context.close()


def overflow(page: Page) -> Any:
    return page.evaluate("document.documentElement.scrollWidth")


def test_no_page_is_wider_than_the_phone(phone: Page, made: dict[str, str]) -> None:
    store = f"/console/key-value-stores/{made['store']}"
    for path in (
        "/console/key-value-stores",
        "/console/key-value-stores?unnamed=1&sort=name",
        store,
        f"{store}?key=wide.png",
        f"{store}?key=OUTPUT",
        f"{store}?tab=settings",
        f"{store}?tab=api",
        f"{store}/records/OUTPUT",
        f"{store}/records/wide.png",
        f"/console/datasets/{made['dataset']}",
        "/console/datasets",
        f"/console/request-queues/{made['queue']}",
        "/console/account",
    ):
        phone.goto(path)
        phone.wait_for_load_state("load")
        assert overflow(phone) <= WIDTH, path


def test_the_account_page_with_a_long_token_name_fits_the_phone(phone: Page) -> None:
    """Its note right after the token is made, and its table, whose Revoke stays in sight."""
    phone.goto("/console/account")
    phone.fill("#token-name", "a" * 64)
    phone.click("button:has-text('Create a token')")
    assert phone.locator("#new-token").count() == 1
    assert overflow(phone) <= WIDTH
    for button in phone.locator("#tokens button:has-text('Revoke')").all():
        box = button.bounding_box()
        assert box is not None
        assert box["x"] + box["width"] <= WIDTH


def test_the_navigation_folds_behind_a_menu(phone: Page) -> None:
    phone.goto("/console/key-value-stores")
    links = phone.locator(".bar nav a")
    assert links.count() == 5
    assert not any(link.is_visible() for link in links.all())
    phone.click(".menu-button")  # a label for a checkbox: no script needed
    for link in links.all():
        box = link.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= WIDTH
    phone.click(".bar nav a:text-is('Datasets')")
    phone.wait_for_url("**/console/datasets")
    # On a wide screen the links show at once, and the Menu button does not.
    phone.set_viewport_size({"width": 1280, "height": 800})
    assert all(link.is_visible() for link in phone.locator(".bar nav a").all())
    assert not phone.is_visible(".menu-button")


def test_the_record_list_stacks_and_the_preview_comes_first_fitted(phone: Page, made: dict[str, str]) -> None:
    phone.goto(f"/console/key-value-stores/{made['store']}?key=wide.png#preview-panel")
    wait_until(phone, "document.querySelector('#preview-image').complete")
    panel = phone.locator("#preview-panel").bounding_box()
    table = phone.locator("#keys").bounding_box()
    image = phone.locator("#preview-image").bounding_box()
    assert panel is not None
    assert table is not None
    assert image is not None
    assert panel["y"] + panel["height"] <= table["y"]  # the preview before the list, not squeezed beside it
    assert image["x"] >= 0
    assert image["x"] + image["width"] <= WIDTH
    assert phone.eval_on_selector("#preview-image", "img => img.naturalWidth") == 1600
    # Each record is a block: its key on a line of its own, the whole key in view.
    key_cell = phone.locator("#keys td.key").filter(has_text="kkkk").bounding_box()
    assert key_cell is not None
    assert key_cell["x"] + key_cell["width"] <= WIDTH
    assert phone.is_hidden("#keys thead")


def test_wide_tables_scroll_inside_the_page(phone: Page, made: dict[str, str]) -> None:
    phone.goto("/console/key-value-stores?unnamed=1")
    scroller = phone.locator(".scroll").first
    assert scroller.evaluate("el => el.scrollWidth > el.clientWidth")  # the store table scrolls in its box
    assert overflow(phone) <= WIDTH


def test_the_longest_key_wraps_on_a_desktop_screen(
    browser: Browser, server: Server, made: dict[str, str]
) -> None:
    context = browser.new_context(base_url=server.base_url, viewport={"width": DESKTOP, "height": 900})
    try:
        page = context.new_page()
        sign_in(page, server.token)
        store = f"/console/key-value-stores/{made['store']}"
        for path in (f"{store}?key={LONGEST_KEY}", f"{store}/records/{LONGEST_KEY}"):
            page.goto(path)
            page.wait_for_load_state("load")
            assert overflow(page) <= DESKTOP, path
    finally:
        context.close()
