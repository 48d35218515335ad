"""Behind a proxy (`forwarded_allow_ips`): the client's address and scheme come from the proxy's
X-Forwarded-For and X-Forwarded-Proto, from the addresses the setting names and no others.

The tests talk to a real `satchel serve` from several loopback addresses: 127.0.0.1 plays the proxy the
setting names, 127.0.0.2 a client that reaches the node directly and forges the headers.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydantic import ValidationError

from satchel.settings import Settings
from tests.conftest import Server, start_server, stop_server
from tests.harness.server import client_from

PROXY = "127.0.0.1"
DIRECT = "127.0.0.2"
GLOBAL_PER_MINUTE = 6
COOKIE = "satchel_console"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "SATCHEL_FORWARDED_ALLOW_IPS": PROXY,
        "SATCHEL_RATE_LIMIT": "on",
        "SATCHEL_RATE_LIMIT_GLOBAL_PER_MINUTE": str(GLOBAL_PER_MINUTE),
        "SATCHEL_RATE_LIMIT_PER_SECOND": "1000",
    }
    srv = start_server(tmp_path_factory.mktemp("proxied") / "data", env=env)
    yield srv
    stop_server(srv)


def anonymous_reads(server: Server, via: str, count: int, forwarded_for: str | None) -> list[int]:
    """Statuses of `count` reads without a token (counted per IP), sent from the address `via`."""
    headers = {"x-forwarded-for": forwarded_for} if forwarded_for else {}
    with client_from(via) as client:
        return [
            client.get(f"{server.api}/key-value-stores/no-such-store", headers=headers).status_code
            for _ in range(count)
        ]


def test_per_ip_limits_count_the_client_the_proxy_names(server: Server) -> None:
    # Fixed one-minute windows: a burst of twice the limit is refused in part whatever the window does.
    spent = anonymous_reads(server, PROXY, 2 * GLOBAL_PER_MINUTE + 1, "203.0.113.1")
    assert 429 in spent
    assert 404 in spent
    # Another client behind the same proxy has a budget of its own...
    assert anonymous_reads(server, PROXY, 1, "203.0.113.2") == [404]
    # ...and one that puts another address first in its header is still counted as itself: the proxy
    # appends the address it saw, and the last address not of a trusted proxy is the client.
    forged = anonymous_reads(server, PROXY, GLOBAL_PER_MINUTE + 1, "198.51.100.99, 203.0.113.1")
    assert 429 in forged


def test_the_headers_of_a_client_that_is_no_trusted_proxy_are_ignored(server: Server) -> None:
    spent = anonymous_reads(server, DIRECT, 2 * GLOBAL_PER_MINUTE + 1, "203.0.113.3")
    assert 429 in spent
    # Naming a fresh address gets it nothing: it is counted by its own.
    renamed = anonymous_reads(server, DIRECT, GLOBAL_PER_MINUTE + 1, "203.0.113.4")
    assert 429 in renamed


def sign_in(server: Server, via: str, headers: dict[str, str], token: str | None = None) -> httpx.Response:
    with client_from(via) as client:
        return client.post(
            f"{server.base_url}/console/login",
            data={"token": token or server.token},
            headers={"origin": server.base_url, **headers},
        )


@pytest.mark.parametrize(
    ("via", "headers", "secure"),
    [
        (PROXY, {"x-forwarded-for": "203.0.113.5", "x-forwarded-proto": "https"}, True),
        (PROXY, {"x-forwarded-for": "203.0.113.5", "x-forwarded-proto": "http"}, False),
        (DIRECT, {"x-forwarded-for": "203.0.113.5", "x-forwarded-proto": "https"}, False),
    ],
    ids=["proxy-https", "proxy-http", "direct-forged-https"],
)
def test_the_console_cookie_is_secure_when_the_proxy_says_https(
    server: Server, via: str, headers: dict[str, str], secure: bool
) -> None:
    response = sign_in(server, via, headers)
    assert response.status_code == 303, response.text
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert ("; secure" in cookie.lower()) is secure, cookie
    assert "httponly" in cookie.lower()


def test_failed_sign_ins_behind_the_proxy_hold_up_only_the_client_that_made_them(server: Server) -> None:
    """Otherwise one guesser behind the proxy would lock everyone out of the Console."""

    def attempt(token: str, client_address: str) -> int:
        return sign_in(server, PROXY, {"x-forwarded-for": client_address}, token).status_code

    # Ten failures a minute per address, in fixed windows: the eleventh, or at most the twenty-first.
    statuses = [attempt(f"apify_api_{n:036d}", "203.0.113.6") for n in range(21)]
    assert statuses[:10] == [401] * 10
    assert 429 in statuses
    assert attempt(server.token, "203.0.113.6") == 429
    assert attempt(server.token, "203.0.113.7") == 303


def test_the_setting_takes_addresses_and_networks_only() -> None:
    assert Settings(forwarded_allow_ips=" 10.0.0.5, 10.0.0.1/8 ,::1").forwarded_allow_ips == (
        "10.0.0.5,10.0.0.0/8,::1"
    )
    assert Settings(forwarded_allow_ips="*").forwarded_allow_ips == "*"
    assert Settings().forwarded_allow_ips == ""
    with pytest.raises(ValidationError, match="'nginx' is not an IP address or network"):
        Settings(forwarded_allow_ips="10.0.0.5,nginx")
