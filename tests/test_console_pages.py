"""The Console's storage pages side by side with what people know from the Apify Console, in a real browser
(Chromium through Playwright) against a real server: the store list's search, sorts, unnamed box and paging;
a store's tabs (records, settings, API); the record list and its preview; copy buttons; named tokens.

Each user here is new, so a list holds exactly what its test made. The list's sorting and searching are done
by the storage engines, so they are also checked on SQLite and PostgreSQL directly. Skipped only when no
Chromium is installed (`.ci/run` installs it).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Page

from satchel.clock import now_ms
from satchel.settings import Settings
from satchel.storage import GeneralAccess, NewStore, Ownership, Storage, StorageKind
from satchel.storage.base import StoreOrder
from satchel.storage.factory import build_storage
from tests.conftest import Server, start_server, stop_server
from tests.harness.backends import Backends
from tests.harness.browser import needs_chromium, png, sign_in, wait_until
from tests.harness.cli import new_user, run_cli

pytestmark = needs_chromium
DASH = "\u2013"
# Names in UTF-8 binary order differ from a dictionary's: digits, then capitals, then small letters.
NAMES = ("alpha", "Beta", "alpha-2", "alpha2", "9lives", "zeta")
NOTE = "main > p.notice[role=status]"  # what the page after a form says was done


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("console-pages") / "data")
    yield server
    stop_server(server)


@dataclass
class Person:
    """A user of their own, with an API client and a signed-in page."""

    name: str
    token: str
    api: httpx.Client
    page: Page
    answers: list[bool]  # what the next confirm() dialogs are answered; accepted when none are left

    def answer(self, dialog: Dialog) -> None:
        if not self.answers or self.answers.pop(0):
            dialog.accept()
        else:
            dialog.dismiss()


@pytest.fixture
def context(browser: Browser, server: Server) -> Iterator[BrowserContext]:
    context = browser.new_context(
        base_url=server.base_url,
        viewport={"width": 1280, "height": 900},
        permissions=["clipboard-read", "clipboard-write"],
    )
    yield context
    context.close()


@pytest.fixture
def person(server: Server, context: BrowserContext) -> Iterator[Person]:
    name = f"pages-{secrets.token_hex(4)}"
    token = new_user(server.data_dir, name)
    page = context.new_page()
    sign_in(page, token)
    with server.client(token) as api:
        person = Person(name, token, api, page, [])
        page.on("dialog", person.answer)
        yield person


def data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"]


def make_store(api: httpx.Client, name: str | None = None) -> dict[str, Any]:
    store: dict[str, Any] = data(api.post("/key-value-stores", params={"name": name} if name else {}), 201)
    return store


def column(page: Page, table: str, n: int) -> list[str]:
    return [text.strip() for text in page.locator(f"{table} tbody tr td:nth-child({n})").all_inner_texts()]


def sort_by(page: Page, value: str) -> None:
    """Click a column's sort link and wait for the sorted page."""
    page.click(f"#stores th a[data-sort={value}]")
    page.wait_for_load_state()


# --- the store list


def test_the_store_list_sorts_by_name_size_and_modified_time_both_ways(person: Person) -> None:
    api, page = person.api, person.page
    stores = {name: make_store(api, name) for name in NAMES}
    # Sizes differ (the largest made first), and the last write to each goes in a known order.
    for size, name in enumerate(reversed(NAMES), start=1):
        api.put(f"/key-value-stores/{stores[name]['id']}/records/body", content=b"x" * (100 * size))
    latest_first = ["alpha2", "zeta", "Beta", "9lives", "alpha-2", "alpha"]
    for name in reversed(latest_first):
        time.sleep(0.002)  # distinct modifiedAt milliseconds
        api.put(f"/key-value-stores/{stores[name]['id']}", json={"generalAccess": "RESTRICTED"})

    page.goto("/console/key-value-stores")
    assert column(page, "#stores", 1) == list(reversed(NAMES))  # newest first, as before
    sort_by(page, "name")
    assert column(page, "#stores", 1) == sorted(NAMES)  # code point order is UTF-8 byte order
    assert column(page, "#stores", 1) == ["9lives", "Beta", "alpha", "alpha-2", "alpha2", "zeta"]
    assert page.get_attribute("#stores th[aria-sort=ascending] a", "data-sort") == "name"
    sort_by(page, "name")
    assert column(page, "#stores", 1) == sorted(NAMES, reverse=True)
    sort_by(page, "size")
    by_size = list(NAMES)  # the first made got the largest body
    assert column(page, "#stores", 1) == by_size  # largest first
    sort_by(page, "size")
    assert column(page, "#stores", 1) == by_size[::-1]
    sizes = [
        int(b)
        for b in page.locator("#stores td[data-bytes]").evaluate_all("tds => tds.map(td => td.dataset.bytes)")
    ]
    assert sizes == sorted(sizes)
    sort_by(page, "modifiedAt")
    assert column(page, "#stores", 1) == latest_first
    sort_by(page, "modifiedAt")
    assert column(page, "#stores", 1) == latest_first[::-1]
    # The API's own list is untouched by the Console's sorts: still in order of creation.
    assert [s["name"] for s in data(api.get("/key-value-stores"))["items"]] == list(NAMES)


def test_search_and_the_unnamed_box_keep_the_sort(person: Person) -> None:
    api, page = person.api, person.page
    stores = {name: make_store(api, name) for name in NAMES}
    unnamed = make_store(api)
    page.goto("/console/key-value-stores?sort=name")
    assert (
        page.inner_text("label[for=unnamed], label:has(#unnamed)").strip()
        == "Include unnamed key-value stores"
    )
    assert page.inner_text("#range") == f"1{DASH}6 of 6"
    page.check("#unnamed")  # applies at once (console.js)
    page.wait_for_url("**unnamed=1")
    assert page.inner_text("#range") == f"1{DASH}7 of 7"
    assert column(page, "#stores", 1)[-1] == "(unnamed)"  # unnamed stores sort last by name
    assert unnamed["id"] in column(page, "#stores", 2)

    page.fill("#search", "ALPHA")
    page.press("#search", "Enter")
    page.wait_for_url("**search=ALPHA**")
    assert column(page, "#stores", 1) == ["alpha", "alpha-2", "alpha2"]  # any case, still by name
    assert page.is_checked("#unnamed")
    sort_by(page, "name")
    assert column(page, "#stores", 1) == ["alpha2", "alpha-2", "alpha"]
    assert page.input_value("#search") == "ALPHA"
    # An id finds its store, named or not; a name nobody has finds nothing, and says so.
    for ref, expected in ((stores["zeta"]["id"], ["zeta"]), (unnamed["id"], ["(unnamed)"])):
        page.fill("#search", ref)
        page.press("#search", "Enter")
        page.wait_for_url(f"**search={ref}**")
        assert column(page, "#stores", 1) == expected
    page.fill("#search", "nothing-here")
    page.press("#search", "Enter")
    page.wait_for_url("**search=nothing-here**")
    assert "No stores named like" in page.inner_text("main")
    # A sort the list does not have is bad input, answered as such.
    response = page.goto("/console/key-value-stores?sort=colour")
    assert response is not None
    assert response.status == 400
    assert "sort must be one of" in page.inner_text("[role=alert]")


def test_the_first_tab_skips_the_header_to_the_page(person: Person) -> None:
    """A keyboard user reaches the page in one step, not past every link of the header on every page."""
    page = person.page
    page.goto("/console/key-value-stores")
    skip = page.locator("a.skip")
    assert skip.bounding_box()["x"] < 0  # type: ignore[index]  # out of sight until focused
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    assert skip.bounding_box()["x"] >= 0  # type: ignore[index]
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_the_store_list_pages_with_totals(person: Person) -> None:
    names = [f"store-{n:02d}" for n in range(45)]
    for name in names:
        make_store(person.api, name)
    page = person.page
    page.goto("/console/key-value-stores?sort=name")
    assert page.inner_text("#range") == f"1{DASH}20 of 45"
    assert page.locator("#pager a[rel=prev]").count() == 0
    assert column(page, "#stores", 1) == names[:20]
    page.click("#pager a[rel=next]")
    assert page.inner_text("#range") == f"21{DASH}40 of 45"
    assert column(page, "#stores", 1) == names[20:40]  # the sort is kept from page to page
    page.click("#pager a[rel=next]")
    assert page.inner_text("#range") == f"41{DASH}45 of 45"
    assert page.locator("#pager a[rel=next]").count() == 0
    page.click("#pager a[rel=prev]")
    assert page.inner_text("#range") == f"21{DASH}40 of 45"
    page.fill("#search", "store-1")
    page.press("#search", "Enter")
    page.wait_for_url("**search=store-1**")
    assert page.inner_text("#range") == f"1{DASH}10 of 10"  # the search starts again at the first page


def test_a_page_past_the_end_of_a_list_says_what_there_is(person: Person) -> None:
    make_store(person.api, "only-one")
    page = person.page
    page.goto("/console/key-value-stores?offset=40&sort=name")
    assert "Nothing on this page: the list has 1." in page.inner_text("main")
    page.click("text=Back to the first page")
    page.wait_for_url("**offset=0**")
    assert column(page, "#stores", 1) == ["only-one"]
    # A dataset's items, too.
    dataset = data(person.api.post("/datasets", params={"name": "three-items"}), 201)
    pushed = person.api.post(f"/datasets/{dataset['id']}/items", json=[{"n": 1}, {"n": 2}, {"n": 3}])
    assert pushed.status_code == 201, pushed.text
    page.goto(f"/console/datasets/{dataset['id']}?offset=100&limit=2")
    assert "No items on this page: the dataset has 3." in page.inner_text("main")
    page.click("text=Back to the first page")
    page.wait_for_url("**offset=0**")
    assert "No items on this page" not in page.inner_text("main")
    # Its Previous leads to the last page, not to the page before this one (as empty, at offset 98).
    page.goto(f"/console/datasets/{dataset['id']}?offset=100&limit=2")
    page.click("a:text-is('Previous')")
    page.wait_for_url("**offset=2**")
    assert page.locator("table tbody tr").count() == 1  # the last page: the third item


def test_the_dataset_and_queue_lists_search_and_sort_too(person: Person) -> None:
    api, page = person.api, person.page
    for name in ("b-items", "A-items", "c-other"):
        made = data(api.post("/datasets", params={"name": name}), 201)
        api.post(f"/datasets/{made['id']}/items", json=[{"n": n} for n in range(len(name))])
        data(api.post("/request-queues", params={"name": name}), 201)
    page.goto("/console/datasets")
    assert page.inner_text("label:has(#unnamed)").strip() == "Include unnamed datasets"
    page.click("#datasets th a[data-sort=name]")
    assert column(page, "#datasets", 1) == ["A-items", "b-items", "c-other"]
    page.fill("#search", "items")
    page.press("#search", "Enter")
    page.wait_for_url("**search=items**")
    assert column(page, "#datasets", 1) == ["A-items", "b-items"]
    assert page.inner_text("#range") == f"1{DASH}2 of 2"
    page.goto("/console/request-queues?sort=name&desc=1")
    assert page.inner_text("label:has(#unnamed)").strip() == "Include unnamed request queues"
    assert column(page, "#queues", 1) == ["c-other", "b-items", "A-items"]
    # A queue's changes are kept beside it, not on the list's rows: its list offers no size or modified sort.
    assert page.locator("#queues th a[data-sort=size], #queues th a[data-sort=modifiedAt]").count() == 0


# --- one store, in tabs


def test_a_stores_tabs_are_links_that_work_without_script(browser: Browser, server: Server) -> None:
    token = new_user(server.data_dir, f"pages-{secrets.token_hex(4)}")
    with server.client(token) as api:
        store = make_store(api, "tabbed")
    context = browser.new_context(base_url=server.base_url, java_script_enabled=False)
    page = context.new_page()
    sign_in(page, token)
    page.goto(f"/console/key-value-stores/{store['id']}")
    assert page.get_attribute("#tab-records", "aria-current") == "page"
    assert page.locator("#keys, #upload").count() >= 1
    page.click("#tab-settings")
    assert page.url.endswith("?tab=settings")
    assert page.locator("#settings").count() == 1
    assert page.locator("#upload").count() == 0
    assert page.locator("button.copy:visible").count() == 0  # copy buttons need the script: hidden
    page.click("#tab-api")
    assert page.url.endswith("?tab=api")
    assert page.locator("#snippet-curl").count() == 1
    page.click("#tab-records")
    assert page.locator("#upload").count() == 1
    context.close()


def test_settings_say_what_naming_does_share_rename_and_delete_with_confirmation(
    person: Person, server: Server
) -> None:
    api, page = person.api, person.page
    store = make_store(api, "to-settle")
    page.goto(f"/console/key-value-stores/{store['id']}?tab=settings")
    # A new store follows its owner's setting, and says what that comes to.
    facts = page.inner_text("dl.facts")
    assert "follow user setting (now restricted)" in facts
    note = page.inner_text("#retention-note")
    assert "named store is kept until it is deleted" in note
    assert "unnamed one is deleted" in note
    assert "7 days" in note
    # A name the field's pattern refuses is refused in the browser, with what a name may hold (as the list
    # page's field says; this one said only "Please match the requested format.").
    page.fill("#name", "not a name!")
    assert page.eval_on_selector("#name", "field => field.checkValidity()") is False
    title = page.get_attribute("#name", "title")
    assert title == "Letters, digits and hyphens, up to 63. Left empty: unnamed."
    page.fill("#name", "settled")
    page.select_option("#generalAccess", "ANYONE_WITH_ID_CAN_READ")
    page.click("button:has-text('Save settings')")
    page.wait_for_url("**?tab=settings")
    assert page.inner_text(NOTE) == "Saved."
    page.reload()  # said once
    assert page.locator(NOTE).count() == 0
    got = data(api.get(f"/key-value-stores/{store['id']}"))
    assert (got["name"], got["generalAccess"]) == ("settled", "ANYONE_WITH_ID_CAN_READ")
    # Emptied, the name goes: the store is unnamed (and so expires when unused).
    page.fill("#name", "")
    page.click("button:has-text('Save settings')")
    page.wait_for_url("**?tab=settings")
    assert data(api.get(f"/key-value-stores/{store['id']}"))["name"] is None
    # Sharing is on the settings tab, and comes back to it.
    friend = f"pages-{secrets.token_hex(4)}"
    new_user(server.data_dir, friend)
    page.fill("#share-user", friend)
    page.click("#share button")
    page.wait_for_url("**?tab=settings#sharing")
    assert page.inner_text(NOTE) == "Sharing saved."
    assert friend in page.inner_text("#shares")
    shares = data(api.get(f"/key-value-stores/{store['id']}/shares"))["items"]
    assert [(s["username"], s["access"]) for s in shares] == [(friend, "READ")]
    # Deleting asks first: refused, the store stays; accepted, it goes.
    person.answers[:] = [False, True]
    page.click("button:has-text('Delete store')")
    assert api.get(f"/key-value-stores/{store['id']}").status_code == 200
    page.click("button:has-text('Delete store')")
    page.wait_for_url("**/console/key-value-stores")
    assert page.inner_text(NOTE) == "Deleted."
    assert api.get(f"/key-value-stores/{store['id']}").status_code == 404


def test_an_error_page_leads_back_to_the_form_as_filled_in_or_to_its_list(person: Person) -> None:
    api, page = person.api, person.page
    store = make_store(api, "to-misname")
    page.goto(f"/console/key-value-stores/{store['id']}?tab=settings")
    page.fill("#name", "no spaces allowed")
    page.evaluate("document.querySelector('#name').removeAttribute('pattern')")  # past the browser's check
    page.click("button:has-text('Save settings')")
    assert page.inner_text("h1") == "That did not work"
    assert page.inner_text("#back") == "Back"
    page.click("#back")
    page.wait_for_url("**?tab=settings")
    assert page.input_value("#name") == "no spaces allowed"  # as typed, to be mended
    # Opened with no page before it, a missing dataset's error leads to the datasets.
    fresh = page.context.new_page()
    fresh.goto("/console/datasets/NoSuchDatasetId1")
    assert fresh.inner_text("#back") == "Back to your datasets"
    assert fresh.get_attribute("#back", "href") == "/console/datasets"
    fresh.close()


def test_making_a_store_says_whether_it_is_new_or_the_name_was_taken(person: Person) -> None:
    api, page = person.api, person.page
    taken = make_store(api, "taken-name")
    for name, note in (
        ("fresh-name", "Created."),
        ("taken-name", "That name is taken: this is the one that has it."),
    ):
        page.goto("/console/key-value-stores")
        page.fill("#new-name", name)
        page.click("button:has-text('Create store')")
        page.wait_for_url("**/console/key-value-stores/*")
        assert page.inner_text(NOTE) == note
    assert page.url.endswith(f"/console/key-value-stores/{taken['id']}")


def test_the_sign_in_page_sends_a_signed_in_browser_on(person: Person) -> None:
    person.page.goto("/console/login?next=/console/datasets")
    assert person.page.url.endswith("/console/datasets")
    assert person.page.locator("input[name=token]").count() == 0


def test_the_api_tab_gives_lines_that_run_as_they_are(person: Person, server: Server) -> None:
    store = make_store(person.api, "with-api")
    page = person.page
    page.goto(f"/console/key-value-stores/{store['id']}?tab=api")
    html = page.content()
    assert person.token not in html
    assert server.token not in html
    endpoints = column(page, "#endpoints", 2)
    assert f"{server.base_url}/v2/key-value-stores/{store['id']}/keys" in endpoints
    curl = page.inner_text("#snippet-curl")
    python = page.inner_text("#snippet-python")
    javascript = page.inner_text("#snippet-javascript")
    for code in (curl, python, javascript):
        assert "SATCHEL_TOKEN" in code
        assert server.base_url in code  # the base URL the page was reached at
    env = {**os.environ, "SATCHEL_TOKEN": person.token}
    # curl: the whole block, pasted where the variable is set.
    done = subprocess.run(
        ["bash", "-ec", curl], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.endswith('{"hello": "world"}')  # the keys, the write, then the record read back
    person.api.delete(f"/key-value-stores/{store['id']}/records/my-record")
    # Python, with the official client.
    done = subprocess.run(
        [sys.executable, "-c", python], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert "{'hello': 'world'}" in done.stdout
    assert person.api.get(f"/key-value-stores/{store['id']}/records/my-record").json() == {"hello": "world"}
    # JavaScript, with the official client the JS suite installs.
    js_dir = Path(__file__).parent / "js"
    if shutil.which("node") and (js_dir / "node_modules" / "apify-client").is_dir():
        done = subprocess.run(
            ["node", "--input-type=module", "-e", javascript],
            env=env, cwd=js_dir, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        assert "hello: 'world'" in done.stdout
        assert "my-record" in done.stdout


# --- records: the list, its pages and the preview


def put(api: httpx.Client, store: str, key: str, body: bytes, content_type: str) -> None:
    response = api.put(
        f"/key-value-stores/{store}/records/{key}", content=body, headers={"content-type": content_type}
    )
    assert response.status_code in (200, 201), response.text


def test_the_record_list_shows_type_size_and_time_with_pages_and_a_prefix(person: Person) -> None:
    api, page = person.api, person.page
    store = make_store(api, "many-records")["id"]
    for n in range(60):
        put(api, store, f"item-{n:03d}", b"x" * (n + 1), "text/plain; charset=utf-8")
    for n in range(5):
        put(api, store, f"photo-{n}", png(2, 2), "image/png")
    page.goto(f"/console/key-value-stores/{store}")
    assert page.inner_text("#keys-range") == f"1{DASH}50 of 65"
    first = page.locator("#keys tbody tr").first
    assert first.locator("td.key").inner_text() == "item-000"
    assert first.locator("td.type").inner_text() == "text/plain; charset=utf-8"
    assert first.locator("td.num").inner_text() == "1 B"
    assert first.locator("td.when").inner_text().endswith(" UTC")
    assert page.locator("#keys-pager a[rel=prev]").count() == 0
    page.click("#keys-pager a[rel=next]")
    assert page.inner_text("#keys-range") == f"51{DASH}65 of 65"
    assert column(page, "#keys", 1)[:2] == ["item-050", "item-051"]
    assert column(page, "#keys", 1)[-1] == "photo-4"
    assert page.locator("#keys-pager a[rel=next]").count() == 0
    page.click("#keys-pager a[rel=prev]")
    assert page.inner_text("#keys-range") == f"1{DASH}50 of 65"
    page.fill("#prefix", "photo-")
    page.click("button:has-text('Filter')")
    assert page.inner_text("#keys-range") == f"1{DASH}5 of 5"
    assert column(page, "#keys", 2) == ["image/png"] * 5
    page.fill("#prefix", "nothing")
    page.click("button:has-text('Filter')")
    assert page.inner_text("#keys-range") == "0 of 0"
    assert "No records with the prefix" in page.inner_text("main")
    # A hand-made or old link: an offset off the page grid steps back to the start, not before it...
    page.goto(f"/console/key-value-stores/{store}?offset=7")
    assert page.inner_text("#keys-range") == f"8{DASH}57 of 65"
    assert page.get_attribute("#keys-pager a[rel=prev]", "href") == "?offset=0"
    # ...and one past the end says so, with the way back, rather than showing the first page as that one.
    page.goto(f"/console/key-value-stores/{store}?offset=500")
    assert page.inner_text("#keys-range") == "0 of 65"
    assert "Nothing on this page" in page.inner_text("main")
    page.click("main p.empty a")
    assert page.inner_text("#keys-range") == f"1{DASH}50 of 65"


def store_of_keys(api: httpx.Client, name: str, prefix: str, count: int) -> str:
    """A store holding `count` one-byte records keyed `{prefix}-0000` on; its id."""
    store: str = make_store(api, name)["id"]
    for n in range(count):
        put(api, store, f"{prefix}-{n:04d}", b"v", "text/plain")
    return store


def test_past_a_thousand_keys_the_record_list_goes_on_from_the_last_key(person: Person) -> None:
    page = person.page
    store = store_of_keys(person.api, "a-thousand", "k", 1010)
    page.goto(f"/console/key-value-stores/{store}")
    assert page.inner_text("#keys-range") == f"1{DASH}50 of more than 1000"
    # An offset past a whole window's end has only the way back: its Next would skip the keys between.
    page.goto(f"/console/key-value-stores/{store}?offset=5000")
    assert "Nothing on this page" in page.inner_text("main")
    assert page.locator("#keys-pager a[rel=next]").count() == 0
    page.goto(f"/console/key-value-stores/{store}?offset=950")
    assert page.inner_text("#keys-range") == f"951{DASH}1000 of more than 1000"
    page.click("#keys-pager a[rel=next]")
    assert page.inner_text("#keys-range") == f"1001{DASH}1010 of 1010"
    assert column(page, "#keys", 1) == [f"k-{n:04d}" for n in range(1000, 1010)]
    assert page.locator("#keys-pager a[rel=next]").count() == 0
    second = page.url
    # Previous steps back into the window before (the link carries where it began), not to the first page.
    page.click("#keys-pager a:text-is('Previous')")
    assert page.inner_text("#keys-range") == f"951{DASH}1000 of more than 1000"
    assert column(page, "#keys", 1)[-1] == "k-0999"
    page.click("#keys-pager a[rel=next]")
    assert page.url == second
    # A link without the trail (an old one, or one written by hand) goes back to the first page.
    page.goto(f"/console/key-value-stores/{store}?after=k-0999&skipped=1000")
    assert page.inner_text("#keys-range") == f"1001{DASH}1010 of 1010"
    page.click("#keys-pager a:text-is('First page')")
    assert page.inner_text("#keys-range") == f"1{DASH}50 of more than 1000"


def test_previous_walks_back_through_windows_and_deleting_keeps_the_trail(person: Person) -> None:
    page = person.page
    store = store_of_keys(person.api, "three-windows", "w", 2005)
    page.goto(f"/console/key-value-stores/{store}?offset=950")
    page.click("#keys-pager a[rel=next]")  # the second window's first page
    assert page.inner_text("#keys-range") == f"1001{DASH}1050 of more than 2000"
    page.goto(f"{page.url}&offset=950")
    page.click("#keys-pager a[rel=next]")  # the third window
    assert page.inner_text("#keys-range") == f"2001{DASH}2005 of 2005"
    # Deleting a record keeps the page, trail and all...
    person.answers[:] = [True]
    page.click("#keys tbody tr:first-child button:has-text('Delete')")
    assert page.inner_text("#keys-range") == f"2001{DASH}2004 of 2004"
    # ...so Previous still walks back window by window.
    page.click("#keys-pager a:text-is('Previous')")
    assert page.inner_text("#keys-range") == f"1951{DASH}2000 of more than 2000"
    page.goto(page.url.replace("offset=950", "offset=0"))
    page.click("#keys-pager a:text-is('Previous')")
    assert page.inner_text("#keys-range") == f"951{DASH}1000 of more than 1000"
    assert column(page, "#keys", 1)[-1] == "w-0999"


def test_the_preview_sits_beside_the_list_and_fits_an_image(person: Person) -> None:
    api, page = person.api, person.page
    store = make_store(api, "previews")["id"]
    put(api, store, "wide.png", png(2400, 40), "image/png")
    put(api, store, "page.html", b"<b>bold</b><script>document.title='pwned'</script>", "text/html")
    put(api, store, "big.txt", b"0123456789" * 30_000, "text/plain")  # 300,000 bytes: past the cap
    put(api, store, "blob.bin", b"\x00\x01\x02", "application/octet-stream")
    page.goto(f"/console/key-value-stores/{store}")
    page.click("#keys a:text-is('wide.png')")
    wait_until(
        page, "document.querySelector('#preview-image') && document.querySelector('#preview-image').complete"
    )
    image = page.locator("#preview-image")
    assert image.evaluate("img => img.naturalWidth") == 2400
    box, panel = image.bounding_box(), page.locator("#preview-panel").bounding_box()
    assert box is not None
    assert panel is not None
    assert box["width"] <= image.evaluate("img => img.parentElement.clientWidth")
    assert box["x"] + box["width"] <= panel["x"] + panel["width"]
    records = page.locator(".record-list").bounding_box()
    assert records is not None
    assert panel["x"] >= records["x"] + records["width"]
    assert page.locator("#keys tr.chosen td.key").inner_text() == "wide.png"
    # Text is shown as text, escaped: no element of it is made, no script of it runs.
    page.click("#keys a:text-is('page.html')")
    assert page.inner_text("#preview") == "<b>bold</b><script>document.title='pwned'</script>"
    assert page.locator("#preview b, #preview script").count() == 0
    assert page.title() != "pwned"
    # Past the size cap, the start of it and a way to the rest.
    page.click("#keys a:text-is('big.txt')")
    assert len(page.inner_text("#preview")) == 256 * 1024
    assert "download it" in page.inner_text("#preview-cut")
    # Neither text nor image: a download link.
    page.click("#keys a:text-is('blob.bin')")
    link = page.locator("#no-preview a")
    with page.expect_download() as download:
        link.click()
    assert Path(download.value.path()).read_bytes() == b"\x00\x01\x02"
    # Its own page shows the same.
    page.click("#preview-panel a:text-is('Open')")
    page.wait_for_url("**/records/blob.bin")
    assert page.locator("#no-preview").count() == 1


def test_a_link_to_a_record_deleted_since_shows_the_list_and_says_so(person: Person) -> None:
    """A store page choosing a record that is no longer there (a bookmark, another tab deleted it) is the
    list with a note where the preview would be, not an error page that loses the list."""
    api, page = person.api, person.page
    store = make_store(api, "gone")["id"]
    put(api, store, "kept", b"v", "text/plain")
    put(api, store, "gone", b"v", "text/plain")
    page.goto(f"/console/key-value-stores/{store}?key=gone")
    assert page.inner_text("#preview") == "v"
    assert api.delete(f"/key-value-stores/{store}/records/gone").status_code == 204
    response = page.reload()
    assert response is not None
    assert response.status == 200
    assert column(page, "#keys", 1) == ["kept"]
    assert "no record with this key" in page.inner_text("#preview-panel #no-record")
    with page.expect_navigation():
        page.click("#preview-panel a:text-is('Close')")
    assert "key=" not in page.url
    assert page.locator("#preview-panel").count() == 0


def clipboard(page: Page) -> str:
    text: str = page.evaluate("navigator.clipboard.readText()")
    return text


def test_copy_buttons_put_ids_urls_and_a_new_token_on_the_clipboard(person: Person, server: Server) -> None:
    api, page = person.api, person.page
    store = make_store(api, "copied")["id"]
    put(api, store, "note", b"hi", "text/plain")
    page.goto(f"/console/key-value-stores/{store}?key=note")
    page.click("button.copy[data-copy='#store-id']")
    assert clipboard(page) == store
    wait_until(
        page, "document.querySelector(\"button.copy[data-copy='#store-id']\").textContent === 'Copied'"
    )
    page.click("button.copy[data-copy='#record-api-url']")
    assert clipboard(page) == f"{server.base_url}/v2/key-value-stores/{store}/records/note"
    page.click("button.copy[data-copy='#public-url']")
    signed = clipboard(page)
    assert httpx.get(signed).text == "hi"  # the signed link reads without a token
    page.goto(f"/console/key-value-stores/{store}?tab=api")
    page.click("button.copy[data-copy='#snippet-python']")
    assert clipboard(page) == page.inner_text("#snippet-python").strip()

    # A named token: made on the account page, copied, and working.
    page.goto("/console/account")
    page.fill("#token-name", "laptop crawler")
    page.click("button:has-text('Create a token')")
    page.click("button.copy[data-copy='#new-token']")
    token = clipboard(page)
    assert token == page.inner_text("#new-token").strip()
    assert token.startswith("apify_api_")
    me = httpx.get(f"{server.api}/users/me", headers={"authorization": f"Bearer {token}"})
    assert me.json()["data"]["username"] == person.name
    page.goto("/console/account")
    assert "laptop crawler" in column(page, "#tokens", 1)
    assert page.locator("#new-token").count() == 0  # shown once


def test_tokens_made_by_the_cli_carry_their_name(server: Server) -> None:
    name = f"pages-{secrets.token_hex(4)}"
    new_user(server.data_dir, name)
    made = run_cli("tokens", "create", name, "--name", "nightly export", data_dir=server.data_dir)
    assert made.stdout.strip().startswith("apify_api_")
    listed = run_cli("tokens", "list", name, data_dir=server.data_dir).stdout.splitlines()
    assert listed[0].split() == ["ID", "CREATED", "NAME"]
    assert [line.endswith("nightly export") for line in listed[1:]] == [False, True]
    refused = run_cli("tokens", "create", name, "--name", "x" * 65, data_dir=server.data_dir, ok=False)
    assert refused.returncode != 0
    assert "64" in refused.stderr


# --- the engines' sorting and searching


@pytest.mark.parametrize("combo", ["sqlite+files", "postgres+files"])
def test_engines_sort_and_search_store_lists_and_name_tokens_alike(
    backends: Backends, combo: str, tmp_path: Path
) -> None:
    async def work(settings: Settings) -> None:
        storage: Storage = build_storage(settings, housekeeping=False)
        await storage.open()
        try:
            await check(storage)
        finally:
            await storage.close()

    async def check(storage: Storage) -> None:
        user = f"u{secrets.token_hex(4)}"
        await storage.users.create(user, user, now_ms(), default_general_access=GeneralAccess.RESTRICTED)
        pks: dict[str | None, int] = {}
        base = now_ms()
        for n, name in enumerate((*NAMES, None)):
            row, _ = await storage.stores.create(
                NewStore(
                    id=secrets.token_hex(8), user_id=user, name=name,
                    general_access=GeneralAccess.RESTRICTED, url_signing_secret_key="k", schema=None,
                    created_at=base + n, kind=StorageKind.KEY_VALUE_STORE,
                )
            )  # fmt: skip
            pks[name] = row.pk
        for n, name in enumerate(NAMES):  # modified in reverse order of creation
            await storage.stores.update(
                pks[name], name=name, general_access=GeneralAccess.RESTRICTED, title=None, now=base + 100 - n
            )

        async def names(
            order: StoreOrder, *, desc: bool = False, search: str | None = None, unnamed: bool = True
        ) -> list[str | None]:
            _, rows = await storage.stores.page(
                user, StorageKind.KEY_VALUE_STORE, ownership=Ownership.ALL, unnamed=unnamed,
                offset=0, limit=100, desc=desc, order=order, search=search,
            )  # fmt: skip
            return [row.name for row, _ in rows]

        ordered = sorted(NAMES)
        assert await names(StoreOrder.NAME) == [*ordered, None]
        assert await names(StoreOrder.NAME, desc=True) == [*ordered[::-1], None]  # unnamed last both ways
        assert await names(StoreOrder.MODIFIED) == [None, *NAMES[::-1]]
        assert await names(StoreOrder.CREATED, desc=True) == [None, *NAMES[::-1]]
        assert await names(StoreOrder.NAME, search="ALPHA") == ["alpha", "alpha-2", "alpha2"]
        assert await names(StoreOrder.NAME, search="%") == []  # no pattern characters
        unnamed_id = next(r.id for r, _ in (await storage.stores.page(
            user, StorageKind.KEY_VALUE_STORE, ownership=Ownership.ALL, unnamed=True, offset=0, limit=100,
            desc=False,
        ))[1] if r.name is None)  # fmt: skip
        assert await names(StoreOrder.NAME, search=unnamed_id) == [None]
        # Searched by its id, an unnamed store is found though unnamed ones are left out of the list.
        assert await names(StoreOrder.NAME, search=unnamed_id, unnamed=False) == [None]
        assert await names(StoreOrder.NAME, search="ALPHA", unnamed=False) == ["alpha", "alpha-2", "alpha2"]
        assert None not in await names(StoreOrder.NAME, unnamed=False)
        # A token's name is kept beside its digest.
        await storage.users.add_token(user, "d" * 64, now_ms(), name="laptop")
        await storage.users.add_token(user, "e" * 64, now_ms())
        assert {t.hash[0]: t.name for t in await storage.users.tokens(user)} == {"d": "laptop", "e": None}

    # In a thread of its own: this module's browser keeps an event loop running in the main one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(work(backends.settings(combo, tmp_path / "data")))).result()
