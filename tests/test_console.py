"""The web Console in a real browser (Debian's Chromium through Playwright) against a real server.

Each step is checked twice: on the page, and through the API with the official shapes, so the Console is known
to change what it claims to change. Skipped only when no Chromium is installed (`.ci/run` installs it).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import Browser, Page, Response

from tests.conftest import Server, start_server, stop_server
from tests.harness.browser import needs_chromium, png, sign_in, wait_until
from tests.harness.cli import new_user

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("console") / "data")
    yield server
    stop_server(server)


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(base_url=server.base_url)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the confirm() before deletes
    yield page
    context.close()


def test_sign_in_refuses_a_wrong_token_and_guards_the_next_page(page: Page, server: Server) -> None:
    page.goto("/console/login")
    page.fill("#token", "apify_api_" + "x" * 36)
    page.click("button:has-text('Sign in')")
    assert "not valid" in page.inner_text("[role=alert]")
    # After signing in, only a Console path is followed: never another site.
    page.goto("/console/login?next=https://evil.example/")
    page.fill("#token", server.token)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{server.base_url}/console/key-value-stores")


def test_store_lifecycle_in_the_browser(page: Page, server: Server, api: httpx.Client) -> None:
    sign_in(page, server.token)
    page.fill("#new-name", "console-e2e")
    page.click("button:has-text('Create store')")
    page.wait_for_url(re.compile(r".*/console/key-value-stores/\w+$"))
    store_id = page.inner_text("#store-id")
    assert api.get(f"/key-value-stores/{store_id}").json()["data"]["name"] == "console-e2e"

    # A typed value, a JSON file and an image.
    page.fill("#key", "greeting")
    page.fill("#text", "hello from the console")
    page.click("button:has-text('Save record')")
    assert page.inner_text("#preview") == "hello from the console"
    page.goto(f"/console/key-value-stores/{store_id}")
    document = {"items": [1, 2, 3], "name": "ünïcode"}
    page.set_input_files(
        "#file", {"name": "doc.json", "mimeType": "application/json", "buffer": json.dumps(document).encode()}
    )
    page.click("button:has-text('Save record')")
    assert json.loads(page.inner_text("#preview")) == document
    assert page.inner_text("#record-key") == "doc.json"
    page.goto(f"/console/key-value-stores/{store_id}")
    image = png(3, 2)
    page.fill("#key", "pixel")
    page.set_input_files("#file", {"name": "p.png", "mimeType": "image/png", "buffer": image})
    page.click("button:has-text('Save record')")
    wait_until(page, "document.querySelector('#preview-image').complete")
    assert page.eval_on_selector("#preview-image", "img => img.naturalWidth") == 3

    greeting = api.get(f"/key-value-stores/{store_id}/records/greeting")
    assert greeting.text == "hello from the console"
    assert greeting.headers["content-type"].startswith("text/plain")
    assert api.get(f"/key-value-stores/{store_id}/records/doc.json").json() == document
    pixel = api.get(f"/key-value-stores/{store_id}/records/pixel")
    assert (pixel.content, pixel.headers["content-type"]) == (image, "image/png")

    # The keys list, a prefix filter, and the ZIP of every record through the store's signed URL.
    page.goto(f"/console/key-value-stores/{store_id}")
    assert page.locator("#keys tbody tr").count() == 3
    page.fill("#prefix", "gr")
    page.click("button:has-text('Filter')")
    assert page.locator("#keys tbody td a").all_inner_texts() == ["greeting"]
    zip_url = page.get_attribute("a:has-text('Download all as ZIP')", "href")
    assert zip_url is not None
    archive = zipfile.ZipFile(io.BytesIO(httpx.get(zip_url).content))
    assert sorted(archive.namelist()) == ["doc.json", "greeting", "pixel"]

    # Delete a record (after the confirm dialog), then rename the store and open it to anyone with the id.
    page.goto(f"/console/key-value-stores/{store_id}/records/greeting")
    page.click("button:has-text('Delete record')")
    page.wait_for_url(f"**/console/key-value-stores/{store_id}")
    assert api.get(f"/key-value-stores/{store_id}/records/greeting").status_code == 404
    page.click("#tab-settings")
    page.fill("#name", "console-renamed")
    page.select_option("#generalAccess", "ANYONE_WITH_ID_CAN_READ")
    page.click("button:has-text('Save settings')")
    data = api.get(f"/key-value-stores/{store_id}").json()["data"]
    assert (data["name"], data["generalAccess"]) == ("console-renamed", "ANYONE_WITH_ID_CAN_READ")
    assert httpx.get(f"{server.api}/key-value-stores/{store_id}/records/pixel").content == image

    # Delete the store.
    page.click("button:has-text('Delete store')")
    page.wait_for_url(f"{server.base_url}/console/key-value-stores")
    assert api.get(f"/key-value-stores/{store_id}").status_code == 404


def test_the_browser_checks_a_key_before_the_form_is_sent(
    page: Page, server: Server, api: httpx.Client
) -> None:
    """The key field's pattern compiles where browsers compile patterns (with the `v` flag, in which a bare
    parenthesis in a class is an error, so an invalid pattern checks nothing)."""
    complaints: list[str] = []
    page.on("console", lambda message: complaints.append(message.text))
    sign_in(page, server.token)
    store_id = api.post("/key-value-stores").json()["data"]["id"]
    page.goto(f"/console/key-value-stores/{store_id}")
    for key, valid in (("a b/", False), ("k\u00e9y", False), ("ok-key_(1)'.!", True), ("x" * 256, True)):
        page.fill("#key", key)
        assert page.eval_on_selector("#key", "field => field.checkValidity()") is valid, key
    assert not [text for text in complaints if "pattern" in text.lower()], complaints
    # What the browser's bubble adds to its "Please match the requested format." (it said nothing more).
    assert page.get_attribute("#key", "title") == "Letters a-z and A-Z, digits and !-_.'() only, up to 256"


def test_a_first_visit_asks_for_nothing_that_fails(browser: Browser, server: Server) -> None:
    """Sign-in and the first page load every resource they ask for, and name the tab's icon (without one a
    browser asks for /favicon.ico, which is not there)."""
    context = browser.new_context(base_url=server.base_url)
    failed: list[str] = []
    icons: list[tuple[int, str]] = []

    def answered(answer: Response) -> None:
        if answer.status >= 400:
            failed.append(f"{answer.status} {answer.url}")
        if answer.url.endswith("/icon.svg"):
            icons.append((answer.status, answer.headers.get("content-type", "")))

    try:
        page = context.new_page()
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.on("response", answered)
        sign_in(page, server.token)
        page.wait_for_load_state("networkidle")
    finally:
        context.close()
    assert failed == []
    assert icons, "no page named an icon"
    assert set(icons) == {(200, "image/svg+xml")}, icons


def test_sharing_shows_a_reader_only_what_they_may_do(
    browser: Browser, page: Page, server: Server, api: httpx.Client
) -> None:
    store = api.post("/key-value-stores", params={"name": "shared-in-console"}).json()["data"]
    api.put(
        f"/key-value-stores/{store['id']}/records/page.html",
        content=b"<script>document.title='pwned'</script>",
        headers={"content-type": "text/html"},
    )
    token = new_user(server.data_dir, "console-reader")
    sign_in(page, server.token)
    page.goto(f"/console/key-value-stores/{store['id']}?tab=settings")
    page.fill("#share-user", "console-reader")
    page.click("#share button")
    assert "console-reader" in page.inner_text("#shares")
    shares = api.get(f"/key-value-stores/{store['id']}/shares").json()["data"]["items"]
    assert [(s["username"], s["access"]) for s in shares] == [("console-reader", "READ")]

    reader_context = browser.new_context(base_url=server.base_url)
    reader = reader_context.new_page()
    sign_in(reader, token)
    reader.goto("/console/key-value-stores?ownership=sharedWithMe")
    assert reader.locator("#stores tbody td a").all_inner_texts() == ["shared-in-console"]
    reader.click("text=shared-in-console")
    assert reader.locator("#upload").count() == 0
    assert reader.locator("#delete-store").count() == 0
    assert reader.locator("#settings").count() == 0
    # A reader may not sign links, so the store's ZIP comes through the Console, whole.
    with reader.expect_download() as download:
        reader.click("a:has-text('Download all as ZIP')")
    archive = zipfile.ZipFile(download.value.path())
    assert archive.read("page.html") == b"<script>document.title='pwned'</script>"
    # Stored HTML opens sandboxed: its script never runs on the Console's origin.
    response = reader.goto(f"/console/key-value-stores/{store['id']}/records/page.html/raw")
    assert response is not None
    assert response.headers["content-security-policy"] == "sandbox"
    assert reader.title() != "pwned"
    # A reader's form post to delete is refused, and nothing changes.
    cookie = {c["name"]: c["value"] for c in reader_context.cookies()}
    refused = httpx.post(
        f"{server.base_url}/console/key-value-stores/{store['id']}/records/page.html/delete", cookies=cookie
    )
    assert refused.status_code == 403
    assert api.get(f"/key-value-stores/{store['id']}/records/page.html").status_code == 200
    reader_context.close()


def test_a_form_posted_from_another_site_is_refused(page: Page, server: Server, api: httpx.Client) -> None:
    store = api.post("/key-value-stores", params={"name": "csrf-target"}).json()["data"]
    sign_in(page, server.token)
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    forged = httpx.post(
        f"{server.base_url}/console/key-value-stores/{store['id']}/delete",
        cookies=cookies,
        headers={"origin": "https://evil.example"},
    )
    assert forged.status_code == 403
    assert api.get(f"/key-value-stores/{store['id']}").status_code == 200


def test_tokens_are_made_and_revoked_from_the_account_page(page: Page, server: Server) -> None:
    token = new_user(server.data_dir, "console-tokens")
    sign_in(page, token)
    page.goto("/console/account")
    page.click("button:has-text('Create a token')")
    new_token = page.inner_text("#new-token").strip()
    me = httpx.get(f"{server.api}/users/me", headers={"authorization": f"Bearer {new_token}"})
    assert me.json()["data"]["username"] == "console-tokens"
    rows = page.locator("#tokens tbody tr")
    assert rows.count() == 2
    assert "Token created." in page.inner_text(".notice")
    # The page was reached by a redirect: a reload shows the list again, and makes no second token.
    assert page.url.endswith("/console/account")
    page.reload()
    assert page.locator("#new-token").count() == 0
    assert rows.count() == 2
    # Revoke the token that is not this session's.
    rows.filter(has_not_text="this session").locator("button").click()
    page.wait_for_url("**/console/account")
    assert page.locator("#tokens tbody tr").count() == 1
    me = httpx.get(f"{server.api}/users/me", headers={"authorization": f"Bearer {new_token}"})
    assert me.status_code == 401
    # The default general access, as the API reports it.
    page.select_option("#default-access select", "ANYONE_WITH_NAME_CAN_READ")
    page.click("#default-access button")
    me = httpx.get(f"{server.api}/users/me", headers={"authorization": f"Bearer {token}"})
    assert me.json()["data"]["defaultGeneralAccess"] == "ANYONE_WITH_NAME_CAN_READ"


def test_pages_need_a_session(server: Server, tmp_path: Path) -> None:
    for path in ("/console/key-value-stores", "/console/account", "/console/key-value-stores/x/records/y"):
        response = httpx.get(server.base_url + path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/console/login?next=")


def test_malformed_forms_are_a_400_not_a_server_error(server: Server) -> None:
    signed_in = httpx.post(f"{server.base_url}/console/login", data={"token": server.token})
    cookies = {"satchel_console": signed_in.cookies["satchel_console"]}  # the session, not the token
    bad = {"content-type": "multipart/form-data"}  # no boundary
    for path in ("/console/login", "/console/key-value-stores", "/console/key-value-stores/x/records"):
        response = httpx.post(server.base_url + path, cookies=cookies, headers=bad, content=b"zzz")
        assert response.status_code == 400, (path, response.status_code)
        assert "could not be read" in response.text
        assert ".." not in response.text, path  # the parser's full stop and the sentence's were both said


def test_odd_numbers_and_deep_json_are_no_server_error(server: Server, api: httpx.Client) -> None:
    """Digits `int` refuses (`²` is a digit to `str.isdigit`) are taken as no number, and a JSON record nested
    past what the encoder writes back is previewed as it is stored."""
    signed_in = httpx.post(f"{server.base_url}/console/login", data={"token": server.token})
    cookies = {"satchel_console": signed_in.cookies["satchel_console"]}
    store = api.post("/key-value-stores").json()["data"]["id"]
    deep = "[" * 300 + "]" * 300
    assert api.put(
        f"/key-value-stores/{store}/records/deep", content=deep, headers={"content-type": "application/json"}
    ).is_success
    dataset = api.post("/datasets").json()["data"]["id"]
    base = f"{server.base_url}/console"
    for path in (
        "/key-value-stores?offset=²",
        "/datasets?offset=٣",
        "/request-queues?offset=²",
        "/runs?offset=²",
        f"/key-value-stores/{store}?offset=²",
        f"/key-value-stores/{store}?after=a&skipped=²",
        f"/datasets/{dataset}?limit=²&offset=²",
        f"/key-value-stores/{store}/records/deep",
        f"/key-value-stores/{store}?key=deep",
    ):
        response = httpx.get(base + path, cookies=cookies)
        assert response.status_code == 200, (path, response.status_code)
    assert deep in httpx.get(f"{base}/key-value-stores/{store}/records/deep", cookies=cookies).text


def _session(server: Server) -> httpx.Client:
    """A client signed in to the Console (its session cookie), as a browser would be, not redirected."""
    signed_in = httpx.post(f"{server.base_url}/console/login", data={"token": server.token})
    return httpx.Client(
        base_url=server.base_url, cookies={"satchel_console": signed_in.cookies["satchel_console"]}
    )


def test_signing_in_again_leads_back_to_the_page_with_its_query_or_to_the_form(
    server: Server, api: httpx.Client
) -> None:
    store = api.post("/key-value-stores").json()["data"]["id"]
    page = f"/console/key-value-stores/{store}?prefix=a&key=a1"
    asked = httpx.get(server.base_url + page)
    assert asked.status_code == 303
    assert asked.headers["location"] == "/console/login?" + urlencode({"next": page})
    # A form sent once the session had ended: back to the page it was sent from, not to where it posts.
    posted = httpx.post(
        f"{server.base_url}/console/key-value-stores/{store}/records",
        data={"key": "k", "text": "lost?"},
        headers={"referer": server.base_url + page},
    )
    assert posted.status_code == 303
    assert posted.headers["location"] == "/console/login?" + urlencode({"next": page})


def test_the_address_a_form_posts_to_leads_to_the_form_s_page(server: Server, api: httpx.Client) -> None:
    store = api.post("/key-value-stores").json()["data"]["id"]
    run = api.post("/acts/~console-actor/runs").json()["data"]["id"]
    pages = {
        f"/console/key-value-stores/{store}/settings": f"/console/key-value-stores/{store}",
        f"/console/key-value-stores/{store}/records": f"/console/key-value-stores/{store}",
        f"/console/key-value-stores/{store}/records/some-key/delete": f"/console/key-value-stores/{store}",
        "/console/account/tokens": "/console/account",
        "/console/account/tokens/abc/revoke": "/console/account",
        f"/console/runs/{run}/abort": f"/console/runs/{run}",
    }
    with _session(server) as console:
        for posted_to, page in pages.items():
            response = console.get(posted_to)
            assert (response.status_code, response.headers.get("location")) == (303, page), posted_to
            assert console.get(page).status_code == 200, page


def test_an_unknown_console_address_is_a_console_page(server: Server) -> None:
    response = httpx.get(f"{server.base_url}/console/no-such-page")
    assert response.status_code == 404
    assert "There is no such page." in response.text
    assert 'href="/console/key-value-stores"' in response.text
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "Sign out" not in response.text
    # Signed in, the page has the Console's links and the way out, as every other page has.
    with _session(server) as console:
        signed_in = console.get("/console/no-such-page")
        assert signed_in.status_code == 404
        assert 'href="/console/datasets"' in signed_in.text
        assert "Sign out" in signed_in.text


def test_an_error_page_leads_back_to_the_form_it_came_from(server: Server, api: httpx.Client) -> None:
    store = api.post("/key-value-stores").json()["data"]["id"]
    form_page = f"{server.base_url}/console/key-value-stores/{store}"
    with _session(server) as console:
        refused = console.post(
            f"/console/key-value-stores/{store}/records",
            files={"key": (None, ""), "file": ("green photo.png", png(1, 1), "image/png")},
            headers={"referer": form_page},
        )
    assert refused.status_code == 400
    assert "the file&#39;s name" in refused.text  # and why: the name has a space
    assert f'href="/console/key-value-stores/{store}" id="back" data-back>Back</a>' in refused.text


def test_typed_text_keeps_the_line_breaks_typed_and_text_shows_in_its_charset(
    server: Server, api: httpx.Client
) -> None:
    store = api.post("/key-value-stores").json()["data"]["id"]
    with _session(server) as console:
        # What a browser sends for a text box holding two lines (HTML's form encoding makes them CRLF).
        sent = console.post(
            f"/console/key-value-stores/{store}/records",
            files={"key": (None, "typed"), "text": (None, "a\r\nb\r\n")},
        )
        assert sent.status_code == 303
        assert api.get(f"/key-value-stores/{store}/records/typed").content == b"a\nb\n"
        latin = {"content-type": "text/plain; charset=iso-8859-1"}
        assert api.put(
            f"/key-value-stores/{store}/records/latin", content="café".encode("latin-1"), headers=latin
        )
        assert "café" in console.get(f"/console/key-value-stores/{store}?key=latin").text
        # A charset Python has a codec for that decodes no bytes at all, whatever the error handler: the
        # preview is UTF-8, as for a charset it does not know (these were a server error on both pages).
        for charset in ("undefined", "idna", "punycode"):
            typed = {"content-type": f"text/plain; charset={charset}"}
            assert api.put(f"/key-value-stores/{store}/records/{charset}", content=b"hi \xff", headers=typed)
            for page in (f"{store}?key={charset}", f"{store}/records/{charset}"):
                shown = console.get(f"/console/key-value-stores/{page}")
                assert shown.status_code == 200, (page, shown.status_code)
                assert "hi \ufffd" in shown.text


def test_deleting_a_record_goes_back_to_the_place_in_the_list(server: Server, api: httpx.Client) -> None:
    store = api.post("/key-value-stores").json()["data"]["id"]
    for key in ("k1", "k2", "k3"):
        assert api.put(f"/key-value-stores/{store}/records/{key}", content=b"v").status_code == 201
    page = f"/console/key-value-stores/{store}"
    with _session(server) as console:
        # The list the record was deleted from, as its form's action names it (whatever the Referer says):
        # its prefix and place come back, the preview does not.
        listed = console.post(
            f"{page}/records/k1/delete?prefix=k&after=k0&skipped=1000&offset=50&key=k1",
            headers={"referer": f"{server.base_url}/console/key-value-stores/~elsewhere"},
        )
        assert (listed.status_code, listed.headers["location"]) == (
            303,
            f"{page}?prefix=k&after=k0&skipped=1000&offset=50",
        )
        alone = console.post(
            f"{page}/records/k2/delete", headers={"referer": f"{server.base_url}{page}/records/k2"}
        )
        assert (alone.status_code, alone.headers["location"]) == (303, page)
        # The form on the list's page carries that place.
        listing = console.get(f"{page}?prefix=k").text
        assert f'action="{page}/records/k3/delete?prefix=k"' in listing
        assert 'aria-label="Delete k3"' in listing
    assert [item["key"] for item in api.get(f"/key-value-stores/{store}/keys").json()["data"]["items"]] == [
        "k3"
    ]


def test_record_bodies_and_downloads_are_not_kept_by_the_browser(server: Server, api: httpx.Client) -> None:
    """A body past inline_max_bytes is served from its file with Last-Modified and an ETag, from which a
    browser reused it unasked (a tenth of its age): a replaced image's preview showed the old one. Every body
    the Console serves from a session says no-store, as its pages do."""
    store = api.post("/key-value-stores").json()["data"]["id"]
    dataset = api.post("/datasets").json()["data"]["id"]
    assert api.post(f"/datasets/{dataset}/items", json=[{"a": 1}]).status_code == 201
    filed = png(300, 200) + b"\x00" * (200 * 1024)  # past the 128 KiB kept inline: served from its file
    for key, body in (("filed.png", filed), ("inline.png", png(1, 1))):
        typed = {"content-type": "image/png"}
        assert api.put(f"/key-value-stores/{store}/records/{key}", content=body, headers=typed).is_success
    base = f"/console/key-value-stores/{store}"
    with _session(server) as console:
        filed_raw = console.get(f"{base}/records/filed.png/raw")
        assert filed_raw.content == filed
        assert "last-modified" in filed_raw.headers  # what the browser's own freshness was worked out from
        for response in (
            filed_raw,
            console.get(f"{base}/records/inline.png/raw?download=1"),
            console.get(f"{base}/zip"),
            console.get(f"/console/datasets/{dataset}/items?format=csv"),
        ):
            assert response.status_code == 200, response.url
            assert response.headers["cache-control"] == "no-store", response.url


def test_an_image_the_browser_cannot_show_says_so(page: Page, server: Server, api: httpx.Client) -> None:
    store = api.post("/key-value-stores").json()["data"]["id"]
    fake = {"content-type": "image/png"}
    assert api.put(
        f"/key-value-stores/{store}/records/notreally.png", content=b"no png", headers=fake
    ).is_success
    sign_in(page, server.token)
    page.goto(f"/console/key-value-stores/{store}/records/notreally.png")
    page.wait_for_selector("#no-preview")
    assert page.locator("#preview-image").count() == 0
    assert "cannot be shown" in page.inner_text("#no-preview")
    link = page.get_attribute("#no-preview a", "href")
    assert link is not None
    assert httpx.get(
        server.base_url + link, cookies={c["name"]: c["value"] for c in page.context.cookies()}
    ).content == (b"no png")
