"""The Console's dataset, request queue and run pages in a real browser (Chromium through Playwright)
against a real server: data made through the API, browsed in the pages, and each thing a page shows or
changes checked through the API as well. Skipped only when no Chromium is installed (`.ci/run` installs it).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page

from tests.conftest import Server, start_server, stop_server
from tests.harness.browser import needs_chromium, sign_in
from tests.harness.cli import new_user

pytestmark = needs_chromium
ITEMS = 45
DASH = "\u2013"  # the en dash between the ends of a range, as in "1-20 of 45"
REQUESTS = 60
CLIENT = "worker-1"  # the one client of the queue: the Console must not count as a second
MEDIA = {
    "json": "application/json",
    "jsonl": "application/jsonl",
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "html": "text/html",
    "xml": "application/xml",
    "rss": "application/rss+xml",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("console-storages") / "data")
    yield server
    stop_server(server)


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(base_url=server.base_url, accept_downloads=True)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the confirm() before deletes and aborts
    yield page
    context.close()


def data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"]


def item(n: int) -> dict[str, Any]:
    return {
        "n": n,
        "title": f"Item {n}",
        "url": f"https://example.com/{n}",
        "tags": ["a", n],
        "meta": {"depth": {"x": n}},
        **({"#debug": "hidden"} if n % 2 else {}),
    }


def texts(where: Page | Locator, selector: str) -> list[str]:
    return [text.strip() for text in where.locator(selector).all_inner_texts()]


def column(page: Page, table: str, index: int) -> list[str]:
    return texts(page, f"{table} tbody tr td:nth-child({index})")


def test_navigation_and_pages_need_a_session(page: Page, server: Server) -> None:
    for path in (
        "/console/datasets",
        "/console/request-queues/x",
        "/console/runs/x",
        "/console/datasets/x/items",
    ):
        response = httpx.get(server.base_url + path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/console/login?next=")
    sign_in(page, server.token)
    assert texts(page, ".bar nav a") == ["Key-value stores", "Datasets", "Request queues", "Runs", "Account"]
    page.click(".bar nav >> text=Datasets")
    assert texts(page, ".bar nav a[aria-current]") == ["Datasets"]
    assert page.locator("h1").inner_text() == "Datasets"


def test_the_dataset_list_counts_items_and_hides_unnamed_ones(page: Page, api: httpx.Client) -> None:
    named = data(api.post("/datasets", params={"name": "console-listed"}), 201)
    api.post(f"/datasets/{named['id']}/items", json=[item(n) for n in range(3)])
    unnamed = data(api.post("/datasets"), 201)
    sign_in(page, api.headers["authorization"].split()[1])
    page.goto("/console/datasets")
    rows = page.locator("#datasets tbody tr")
    names = column(page, "#datasets", 1)
    assert "console-listed" in names
    assert "(unnamed)" not in names
    listed = rows.filter(has_text="console-listed")
    assert listed.locator("td:nth-child(4)").inner_text() == "3"
    total = data(api.get("/datasets"))["total"]
    assert page.inner_text("#range").endswith(f"of {total}")
    # The checkbox applies at once (console.js), and the API's unnamed list agrees.
    page.check("#unnamed")
    page.wait_for_url("**unnamed=1")
    ids = texts(page, "#datasets tbody td:nth-child(2)")
    assert unnamed["id"] in ids
    assert set(ids) == {d["id"] for d in data(api.get("/datasets", params={"unnamed": 1}))["items"]}


def test_a_dataset_table_keeps_its_columns_from_page_to_page(
    page: Page, server: Server, api: httpx.Client
) -> None:
    """Columns come from the dataset's first 100 items, then the page's own: a field keeps its place while
    paging, where each page's items alone ordered them, and a page without a field dropped its column."""
    did = data(api.post("/datasets", params={"name": "varied-items"}), 201)["id"]
    items: list[dict[str, object]] = [
        {"url": f"u{n}", "failed": True} if n >= 110 else {"url": f"u{n}", "title": f"t{n}"}
        for n in range(130)
    ]
    items[45]["links"] = 3
    assert api.post(f"/datasets/{did}/items", json=items).status_code == 201
    sign_in(page, server.token)
    page.goto(f"/console/datasets/{did}")
    assert texts(page, "#items thead th") == ["#", "url", "title", "links"]  # links: from item 45
    page.goto(f"/console/datasets/{did}?limit=100")  # a first page that holds the whole sample itself
    assert texts(page, "#items thead th") == ["#", "url", "title", "links"]
    # Past the first 100, a page with no title and no links: their columns stay, empty, and `failed` follows.
    page.goto(f"/console/datasets/{did}?offset=120")
    assert texts(page, "#items thead th") == ["#", "url", "title", "links", "failed"]
    assert texts(page, "#items tbody tr:first-child td") == ["120", "u120", "", "", "true"]
    page.goto(f"/console/datasets/{did}?desc=1")  # newest first: the same order
    assert texts(page, "#items thead th") == ["#", "url", "title", "links", "failed"]


def test_a_dataset_of_many_fields_shows_the_first_fifty_and_says_so(
    page: Page, server: Server, api: httpx.Client
) -> None:
    """500 fields of 1,000 items made an 11.6 MB page that took Chromium 20 s: the table keeps the first 50
    fields, says how many there are, and shows any named in Fields; the downloads keep every field."""
    did = data(api.post("/datasets", params={"name": "wide-items"}), 201)["id"]
    wide = [{f"f{i:03d}": n for i in range(120)} for n in range(3)]
    assert api.post(f"/datasets/{did}/items", json=wide).status_code == 201
    sign_in(page, server.token)
    page.goto(f"/console/datasets/{did}")
    assert texts(page, "#items thead th") == ["#", *[f"f{i:03d}" for i in range(50)]]
    assert "The first 50 of 120 fields are shown" in page.inner_text("#more-fields")
    page.goto(f"/console/datasets/{did}?fields=" + ",".join(f"f{i:03d}" for i in range(60, 120)))
    assert texts(page, "#items thead th") == ["#", *[f"f{i:03d}" for i in range(60, 120)]]
    assert page.locator("#more-fields").count() == 0
    exported = api.get(f"/datasets/{did}/items", params={"format": "csv"}).text.splitlines()[0]
    assert exported.count(",") == 119


def test_dataset_items_as_a_table_with_paging_fields_and_downloads(
    page: Page, server: Server, api: httpx.Client
) -> None:
    dataset = data(api.post("/datasets", params={"name": "console-items"}), 201)
    did = dataset["id"]
    assert api.post(f"/datasets/{did}/items", json=[item(n) for n in range(ITEMS)]).status_code == 201
    sign_in(page, server.token)
    # The API's consoleUrl is this page.
    page.goto(dataset["consoleUrl"])
    assert page.inner_text("#dataset-id") == did
    assert page.inner_text("#item-count") == str(ITEMS)

    # The first page: 20 rows, all fields in the order they came, nested values as compact JSON.
    headers = texts(page, "#items thead th")
    assert headers == ["#", "n", "title", "url", "tags", "meta", "#debug"]
    assert page.inner_text("#range") == f"1{DASH}20 of {ITEMS}"
    assert column(page, "#items", 1) == [str(n) for n in range(20)]
    first = texts(page, "#items tbody tr:first-child td")
    assert first == ["0", "0", "Item 0", "https://example.com/0", '["a",0]', '{"depth":{"x":0}}', ""]
    api_page = api.get(f"/datasets/{did}/items", params={"offset": 0, "limit": 20})
    assert api_page.headers["x-apify-pagination-total"] == str(ITEMS)
    assert column(page, "#items", 3) == [i["title"] for i in api_page.json()]

    # Next and previous pages.
    page.click("#pager >> text=Next")
    assert page.inner_text("#range") == f"21{DASH}40 of {ITEMS}"
    assert column(page, "#items", 1) == [str(n) for n in range(20, 40)]
    page.click("#pager >> text=Next")
    assert page.inner_text("#range") == f"41{DASH}{ITEMS} of {ITEMS}"
    assert page.locator("#pager >> text=Next").count() == 0
    api_last = api.get(f"/datasets/{did}/items", params={"offset": 40, "limit": 20}).json()
    assert column(page, "#items", 2) == [str(i["n"]) for i in api_last]
    page.click("#pager >> text=Previous")
    assert page.inner_text("#range") == f"21{DASH}40 of {ITEMS}"

    # Chosen fields, as the API's `fields`, kept while paging.
    page.goto(f"/console/datasets/{did}")
    page.fill("#fields", "title, n")
    page.select_option("#limit", "10")
    page.click("#item-options button")
    assert texts(page, "#items thead th") == ["#", "title", "n"]
    chosen = api.get(f"/datasets/{did}/items", params={"fields": "title,n", "limit": 10}).json()
    assert [texts(page, f"#items tbody tr:nth-child({i + 1}) td")[1:] for i in range(10)] == [
        [c["title"], str(c["n"])] for c in chosen
    ]
    page.click("#pager >> text=Next")
    assert page.inner_text("#range") == f"11{DASH}20 of {ITEMS}"
    assert texts(page, "#items thead th") == ["#", "title", "n"]

    # The CSV download, through the Console with the session, of all items with the fields chosen.
    with page.expect_download() as download_info:
        page.click("#downloads >> text=CSV")
    path = download_info.value.path()
    assert path is not None
    downloaded = path.read_bytes()
    assert download_info.value.suggested_filename == "console-items.csv"
    from_api = api.get(f"/datasets/{did}/items", params={"format": "csv", "fields": "title,n"}).content
    assert downloaded == from_api
    rows = list(csv.reader(io.StringIO(downloaded.decode("utf-8-sig"))))
    assert rows[0] == ["title", "n"]
    assert rows[1] == ["Item 0", "0"]
    assert len(rows) == ITEMS + 1

    # Every format downloads with its type; none is served inline to run on the Console's origin.
    for link in page.locator("#downloads a").all():
        href = link.get_attribute("href")
        assert href is not None
        response = page.request.get(href)
        fmt = href.split("format=")[1].split("&")[0]
        assert response.status == 200, fmt
        assert response.headers["content-type"].startswith(MEDIA[fmt]), fmt
        assert response.headers["content-disposition"].startswith("attachment"), fmt
        assert response.headers["content-security-policy"] == "sandbox"
    # The page holds no API token: a writer's link is the API's items URL, signed, that reads without one.
    assert server.token not in page.content()
    signed = page.inner_text("#signed-items-url")
    assert httpx.get(signed + "&format=json&limit=2").json() == [item(0), item(1)]

    # Clean items leave hidden fields out; newest first turns the order around.
    page.goto(f"/console/datasets/{did}?clean=1&desc=1")
    assert "#debug" not in texts(page, "#items thead th")
    assert column(page, "#items", 1)[:3] == ["44", "43", "42"]
    newest = api.get(f"/datasets/{did}/items", params={"desc": 1, "clean": 1, "limit": 1}).json()[0]
    assert column(page, "#items", 2)[0] == str(newest["n"])

    # Rename and open to anyone with the id, then delete: the store page's forms, for a dataset.
    page.fill("#name", "console-items-renamed")
    page.select_option("#generalAccess", "ANYONE_WITH_ID_CAN_READ")
    page.click("button:has-text('Save settings')")
    got = data(api.get(f"/datasets/{did}"))
    assert (got["name"], got["generalAccess"]) == ("console-items-renamed", "ANYONE_WITH_ID_CAN_READ")
    assert len(httpx.get(f"{server.api}/datasets/{did}/items").json()) == ITEMS
    page.click("button:has-text('Delete dataset')")
    page.wait_for_url(f"{server.base_url}/console/datasets")
    assert api.get(f"/datasets/{did}").status_code == 404


def test_a_reader_browses_and_downloads_but_changes_nothing(
    browser: Browser, page: Page, server: Server, api: httpx.Client
) -> None:
    dataset = data(api.post("/datasets", params={"name": "console-shared"}), 201)
    api.post(f"/datasets/{dataset['id']}/items", json=[item(1), item(2)])
    token = new_user(server.data_dir, "console-dataset-reader")
    sign_in(page, server.token)
    page.goto(f"/console/datasets/{dataset['id']}")
    page.fill("#share-user", "console-dataset-reader")
    page.click("#share button")
    assert "console-dataset-reader" in page.inner_text("#shares")
    shares = data(api.get(f"/datasets/{dataset['id']}/shares"))["items"]
    assert [(s["username"], s["access"]) for s in shares] == [("console-dataset-reader", "READ")]

    context = browser.new_context(base_url=server.base_url)
    reader = context.new_page()
    sign_in(reader, token)
    reader.goto("/console/datasets?ownership=sharedWithMe")
    assert column(reader, "#datasets", 1) == ["console-shared"]
    reader.click("text=console-shared")
    assert column(reader, "#items", 2) == ["1", "2"]
    for absent in ("#settings", "#delete-dataset", "#signed-items-url"):
        assert reader.locator(absent).count() == 0, absent
    jsonl = reader.request.get(f"/console/datasets/{dataset['id']}/items?format=jsonl")
    assert jsonl.text().splitlines() == ['{"n":1,"title":"Item 1","url":"https://example.com/1","tags":["a",1],'
                                         '"meta":{"depth":{"x":1}},"#debug":"hidden"}',
                                         '{"n":2,"title":"Item 2","url":"https://example.com/2","tags":["a",2],'
                                         '"meta":{"depth":{"x":2}}}']  # fmt: skip
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    refused = httpx.post(f"{server.base_url}/console/datasets/{dataset['id']}/delete", cookies=cookies)
    assert refused.status_code == 403
    context.close()
    # A form from another site is refused even for the owner.
    owner = {c["name"]: c["value"] for c in page.context.cookies()}
    forged = httpx.post(
        f"{server.base_url}/console/datasets/{dataset['id']}/delete",
        cookies=owner,
        headers={"origin": "https://evil.example"},
    )
    assert forged.status_code == 403
    assert api.get(f"/datasets/{dataset['id']}").status_code == 200


def _fill(q: str, api: httpx.Client) -> None:
    """REQUESTS requests added in batches and the first three marked handled, all by one client."""
    one = {"clientKey": CLIENT}
    sent = [
        {
            "url": f"https://example.com/page/{n}",
            "uniqueKey": f"page-{n}",
            "method": "POST" if n % 7 == 0 else "GET",
        }
        for n in range(REQUESTS)
    ]
    for start in range(0, REQUESTS, 25):
        data(api.post(f"{q}/requests/batch", params=one, json=sent[start : start + 25]), 201)
    stored = data(api.get(f"{q}/requests", params={"limit": 1000, **one}))["items"]
    for request in stored:
        if request["uniqueKey"] in ("page-0", "page-1", "page-2"):
            handled = {**request, "handledAt": "2025-01-02T03:04:05.000Z"}
            data(api.put(f"{q}/requests/{request['id']}", params=one, json=handled))


def test_request_queue_counts_head_requests_and_one_request(
    page: Page, server: Server, api: httpx.Client
) -> None:
    queue = data(api.post("/request-queues", params={"name": "console-queue"}), 201)
    q = f"/request-queues/{queue['id']}"
    _fill(q, api)
    locked = data(api.post(f"{q}/head/lock", params={"lockSecs": 600, "limit": 2, "clientKey": CLIENT}))
    locked_ids = [r["id"] for r in locked["items"]]
    before = data(api.get(q))
    assert (before["totalRequestCount"], before["handledRequestCount"]) == (REQUESTS, 3)
    assert before["hadMultipleClients"] is False

    sign_in(page, server.token)
    page.goto("/console/request-queues")
    row = page.locator("#queues tbody tr").filter(has_text="console-queue")
    assert texts(row, "td.num") == [str(REQUESTS), "3", str(REQUESTS - 3)]

    # The queue's page (its consoleUrl): counts and hadMultipleClients as the API says.
    page.goto(queue["consoleUrl"])
    assert page.inner_text("#queue-id") == queue["id"]
    counts = [page.inner_text(f"#{name}") for name in ("total", "handled", "pending")]
    assert counts == [str(before["totalRequestCount"]), "3", str(before["pendingRequestCount"])]
    assert page.inner_text("#multiple-clients") == "no"
    page.reload()
    # Looking at a queue does not make its viewer one of its clients.
    assert data(api.get(q))["hadMultipleClients"] is False

    # The head: pending, unlocked, in queue order, as the API's head shows it to the locking client.
    head = data(api.get(f"{q}/head", params={"limit": 20, "clientKey": CLIENT}))["items"]
    assert column(page, "#head", 1) == [r["id"] for r in head]
    assert column(page, "#head", 2) == [r["url"] for r in head]
    assert column(page, "#head", 3) == [r.get("method", "GET") for r in head]
    assert column(page, "#head", 4) == [str(r.get("retryCount", 0)) for r in head]
    assert not set(locked_ids) & set(column(page, "#head", 1))

    # Every request, a page at a time by cursor, in the API's order.
    listed = data(api.get(f"{q}/requests", params={"limit": 50, "clientKey": CLIENT}))
    assert column(page, "#requests", 1) == [r["id"] for r in listed["items"]]
    page.click("#all-requests >> text=Next page")
    rest = data(
        api.get(f"{q}/requests", params={"limit": 50, "cursor": listed["nextCursor"], "clientKey": CLIENT})
    )
    assert column(page, "#requests", 1) == [r["id"] for r in rest["items"]]
    assert len(rest["items"]) == REQUESTS - 50
    assert page.locator("#all-requests >> text=Next page").count() == 0
    page.click("#all-requests >> text=First page")
    assert len(column(page, "#requests", 1)) == 50
    page.click("#all-requests .tabs >> text=Locked")
    assert sorted(column(page, "#requests", 1)) == sorted(locked_ids)

    # One request: its JSON, when it was handled, its lock.
    handled = next(r for r in listed["items"] + rest["items"] if r["uniqueKey"] == "page-0")
    page.goto(f"/console/request-queues/{queue['id']}/requests/{handled['id']}")
    stored = data(api.get(f"{q}/requests/{handled['id']}"))
    assert page.inner_text("#request-url") == stored["url"]
    assert json.loads(page.inner_text("#request-json")) == stored
    assert page.inner_text("#handled-at") == "2025-01-02 03:04:05 UTC"
    assert page.inner_text("#lock") == "not locked"
    page.goto(f"/console/request-queues/{queue['id']}/requests/{locked_ids[0]}")
    assert "worker-1" in page.inner_text("#lock")
    assert page.inner_text("#handled-at").startswith("not yet")
    lock = data(api.get(f"{q}/requests/{locked_ids[0]}"))
    assert lock["lockByClient"] == "worker-1"
    assert data(api.get(q))["hadMultipleClients"] is False


def test_phone_sized_pages_scroll_their_tables_not_the_page(
    browser: Browser, server: Server, api: httpx.Client
) -> None:
    dataset = data(api.post("/datasets", params={"name": "console-wide"}), 201)
    wide = {f"field{i}": "x" * 40 for i in range(12)}
    api.post(f"/datasets/{dataset['id']}/items", json=[wide, wide])
    context = browser.new_context(base_url=server.base_url, viewport={"width": 375, "height": 740})
    phone = context.new_page()
    sign_in(phone, server.token)
    for path in (
        f"/console/datasets/{dataset['id']}",
        "/console/datasets",
        "/console/request-queues",
        "/console/runs",
    ):
        phone.goto(path)
        overflow = phone.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (path, overflow)
    # Every section of the navigation is in view once its menu is opened, on lines of its own.
    phone.click(".menu-button")
    for link in phone.locator(".bar nav a").all():
        box = link.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 375
    phone.goto(f"/console/datasets/{dataset['id']}")
    scroller = phone.locator(".scroll").first
    assert scroller.evaluate("el => el.scrollWidth > el.clientWidth")
    context.close()


def test_runs_list_and_a_runs_page_with_its_storages(page: Page, server: Server, api: httpx.Client) -> None:
    done = data(api.post("/acts/~console-actor/runs", json={"start": "https://example.com"}), 201)
    pushed = api.post(f"/datasets/{done['defaultDatasetId']}/items", json=[{"from": "the run"}])
    assert pushed.status_code == 201
    finished = data(
        api.put(
            f"/actor-runs/{done['id']}",
            json={"status": "SUCCEEDED", "exitCode": 0, "statusMessage": "All done"},
        )
    )
    running = data(api.post("/acts/~console-actor/runs"), 201)

    sign_in(page, server.token)
    page.goto("/console/runs")
    runs = data(api.get("/actor-runs", params={"desc": 1}))
    assert column(page, "#runs", 1)[: len(runs["items"])] == [r["id"] for r in runs["items"]]
    row = page.locator("#runs tbody tr").filter(has_text=done["id"])
    cells = texts(row, "td")
    assert cells[1:3] == ["SUCCEEDED", "console-actor"]
    assert cells[4] != ""
    assert cells[5] == "0"
    page.select_option("#status", "RUNNING")
    page.wait_for_url("**status=RUNNING")
    refused = page.request.get("/console/runs?status=BOGUS")  # bad input, answered as such
    assert refused.status == 400
    assert "status must be one of" in refused.text()
    assert running["id"] in column(page, "#runs", 1)
    assert done["id"] not in column(page, "#runs", 1)

    # The run's page: status, message, exit code and times as the API has them, and its storages.
    page.goto(f"/console/runs/{done['id']}")
    assert page.inner_text("#run-status") == finished["status"] == "SUCCEEDED"
    assert page.inner_text("#status-message") == finished["statusMessage"]
    assert page.inner_text("#exit-code") == "0"
    assert page.inner_text("#finished-at") == finished["finishedAt"].replace("T", " ")[:19] + " UTC"
    assert page.locator("#abort-run").count() == 0
    page.click("#run-dataset")
    assert page.inner_text("#dataset-id") == done["defaultDatasetId"]
    assert texts(page, "#items tbody td")[1:] == ["the run"]
    page.go_back()
    page.click("#run-request-queue")
    assert page.inner_text("#queue-id") == done["defaultRequestQueueId"]
    page.go_back()
    page.click("#run-key-value-store")
    assert page.inner_text("#store-id") == done["defaultKeyValueStoreId"]
    page.goto(f"/console/runs/{done['id']}")
    page.click("#storages >> text=INPUT")
    assert page.inner_text("#preview").replace(" ", "").replace("\n", "") == '{"start":"https://example.com"}'

    # Its log: the end shown on its page without terminal escapes, the whole of it behind a link.
    page.goto(f"/console/runs/{done['id']}")
    assert "only a command that satchel run runs" in page.inner_text("#log")  # nobody drives this one
    lines = [f"\x1b[32mINFO\x1b(B\x1b[m line {i:05d} {'x' * 60}\n" for i in range(1500)]  # 107 KiB
    for start in range(0, len(lines), 500):
        added = api.post(
            f"/actor-runs/{done['id']}/log", content="".join(lines[start : start + 500]).encode()
        )
        assert added.status_code == 204
    page.goto(f"/console/runs/{done['id']}")
    shown = page.inner_text("#log-tail").splitlines()
    assert shown[-1] == f"INFO line 01499 {'x' * 60}"
    assert shown[0].startswith("INFO line ")  # from a whole line
    # The box opens at its end.
    assert (
        page.evaluate(
            "(() => { const b = document.querySelector('#log-tail');"
            " return b.scrollHeight - b.clientHeight - b.scrollTop; })()"
        )
        <= 1
    )
    assert "line 00000" not in page.inner_text("#log-tail")  # only the end
    assert "\x1b" not in page.inner_text("#log-tail")
    assert "Its last 63.9 KiB of" in page.inner_text("#log")  # from a whole line: 64 KiB less a part of one
    whole = page.request.get(page.get_attribute("#whole-log", "href") or "")
    assert whole.status == 200
    assert whole.text() == "".join(lines)
    # What a command prints is no page of the Console's origin: not sniffed, and sandboxed if rendered.
    assert whole.headers["x-content-type-options"] == "nosniff"
    assert whole.headers["content-security-policy"] == "sandbox"

    # An abort sent once the run has finished (a page left open) says that nothing was aborted.
    page.goto(f"/console/runs/{done['id']}")
    page.evaluate(
        "(() => { const f = document.createElement('form'); f.method = 'post';"
        f" f.action = '/console/runs/{done['id']}/abort'; document.body.append(f); f.submit(); }})()"
    )
    page.wait_for_url(f"**/console/runs/{done['id']}")
    assert page.inner_text("main > p.notice") == "The run had already finished: nothing was aborted."
    assert page.inner_text("#run-status") == "SUCCEEDED"

    # A running run is aborted by its owner from its page.
    page.goto(f"/console/runs/{running['id']}")
    assert page.inner_text("#run-status") == "RUNNING"
    page.click("#abort-run button")
    page.wait_for_url(f"**/console/runs/{running['id']}")
    assert page.inner_text("#run-status") == "ABORTED"
    assert page.inner_text("main > p.notice") == "The run was marked aborted."
    assert data(api.get(f"/actor-runs/{running['id']}"))["status"] == "ABORTED"

    # One that `satchel run` drives (origin CLI) is aborted gracefully: its command gets time to end; a
    # second click stops it now.
    driven = data(api.post("/acts/~console-actor/runs", params={"origin": "CLI"}), 201)
    page.goto(f"/console/runs/{driven['id']}")
    assert "told the run is aborting" in (page.get_attribute("#abort-run", "data-confirm") or "")
    page.click("#abort-run button")
    page.wait_for_url(f"**/console/runs/{driven['id']}")
    assert page.inner_text("#run-status") == "ABORTING"
    assert page.inner_text("main > p.notice").startswith("The run is aborting")
    page.click("#abort-run button:has-text('Stop now')")
    page.wait_for_url(f"**/console/runs/{driven['id']}")
    assert page.inner_text("#run-status") == "ABORTED"
    assert page.inner_text("main > p.notice") == (
        "The run is aborted: satchel run stops its command now (killed if it has not ended in 10 s)."
    )
    # The list asked for past its end says what it has.
    page.goto("/console/runs?status=ABORTED&offset=500")
    assert "Nothing on this page: the list has" in page.inner_text("main")
    page.click("text=Back to the first page")
    page.wait_for_url("**status=ABORTED**")
    assert driven["id"] in column(page, "#runs", 1)
