"""The connection guard's body clock, in process: one timer per process cuts a body that stopped arriving
(BodyTimeout, which the app can still answer), leaves a body that keeps coming alone, passes a client's own
cancellation through, and leaves requests that declare no body unwrapped. Over real sockets:
test_hostile_connections.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from starlette.types import Message, Receive, Scope, Send

from satchel.connections import ConnectionGuard
from satchel.errors import BodyTimeout
from satchel.settings import Settings

TIMEOUT = 0.3  # seconds
SLACK = 2.0  # seconds: only to tell "cut" from "hung"


def _scope(headers: list[tuple[bytes, bytes]]) -> Scope:
    return {
        "type": "http",
        "method": "PUT",
        "path": "/x",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
    }


def _guard(app: Callable[[Scope, Receive, Send], Awaitable[None]], tmp_path: Path) -> ConnectionGuard:
    settings = Settings(data_dir=tmp_path, body_timeout_seconds=TIMEOUT)
    return ConnectionGuard(app, settings, cap=1000)


class Client:
    """Body pieces handed to the app when the test says; `sent` is what the app answered."""

    def __init__(self) -> None:
        self.pieces: asyncio.Queue[Message] = asyncio.Queue()
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        return await self.pieces.get()

    async def send(self, message: Message) -> None:
        self.sent.append(message)


async def _reads_then_answers(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the body to its end, then answers 200, or 408 if the body timed out."""
    status = 200
    try:
        while True:
            message = await receive()
            if not message.get("more_body", False):
                break
    except BodyTimeout:
        status = 408
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def test_a_stalled_body_is_cut_and_the_app_still_answers(tmp_path: Path) -> None:
    async def go() -> None:
        client = Client()
        guard = _guard(_reads_then_answers, tmp_path)
        await client.pieces.put({"type": "http.request", "body": b"a", "more_body": True})
        loop = asyncio.get_running_loop()
        began = loop.time()
        # Nothing more comes: the clock cancels the wait, the read raises BodyTimeout, and the task, no longer
        # cancelled, goes on to answer.
        await asyncio.wait_for(
            guard(_scope([(b"content-length", b"10")]), client.receive, client.send), SLACK
        )
        took = loop.time() - began
        assert client.sent[0]["status"] == 408
        assert took >= TIMEOUT
        assert not guard.clock.waiting
        assert not guard.working

    asyncio.run(go())


def test_a_body_that_keeps_coming_is_not_cut(tmp_path: Path) -> None:
    async def go() -> None:
        client = Client()
        guard = _guard(_reads_then_answers, tmp_path)

        async def trickle() -> None:
            # Each piece comes within the timeout; all of them together take three times as long.
            for _ in range(9):
                await client.pieces.put({"type": "http.request", "body": b"a", "more_body": True})
                await asyncio.sleep(TIMEOUT / 3)
            await client.pieces.put({"type": "http.request", "body": b"a", "more_body": False})

        feeding = asyncio.create_task(trickle())
        await asyncio.wait_for(
            guard(_scope([(b"content-length", b"10")]), client.receive, client.send), SLACK * 3
        )
        await feeding
        assert client.sent[0]["status"] == 200
        assert not guard.clock.waiting

    asyncio.run(go())


def test_a_cancellation_from_outside_is_not_turned_into_a_timeout(tmp_path: Path) -> None:
    """The client going away cancels the request's task: that stays a cancellation, clock or not."""

    async def go() -> None:
        client = Client()
        guard = _guard(_reads_then_answers, tmp_path)
        task = asyncio.create_task(
            guard(_scope([(b"transfer-encoding", b"chunked")]), client.receive, client.send)
        )
        await asyncio.sleep(TIMEOUT / 3)
        assert guard.clock.waiting  # waiting for its first piece
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client.sent == []
        assert not guard.clock.waiting
        assert not guard.working

    asyncio.run(go())


def test_a_request_without_a_body_reaches_the_app_unwrapped(tmp_path: Path) -> None:
    async def go() -> None:
        seen: list[Receive] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            seen.append(receive)

        client = Client()
        guard = _guard(app, tmp_path)
        for headers in ([], [(b"content-length", b"0")]):
            await guard(_scope(headers), client.receive, client.send)
        await guard(_scope([(b"content-length", b"5")]), client.receive, client.send)
        assert seen[0] == client.receive
        assert seen[1] == client.receive
        assert seen[2] != client.receive  # a declared body is timed

    asyncio.run(go())
