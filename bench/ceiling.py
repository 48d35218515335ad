"""The Python ceiling: a bare Starlette handler on granian that does no work.

GET answers 1 KiB from memory; PUT reads the whole body and answers 201. It runs through the same launcher
as Satchel (`satchel.serving.run_granian`: same server, workers, loop and HTTP settings), so the ratio between
the two is what Satchel's own work costs.

    python -m bench.ceiling --port 9000 --workers 1
"""

from __future__ import annotations

import argparse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from satchel.serving import run_granian
from satchel.settings import Settings

PAYLOAD = b"x" * 1024


async def get(request: Request) -> Response:
    return Response(PAYLOAD, media_type="application/octet-stream")


async def put(request: Request) -> Response:
    await request.body()
    return Response(b"{}", status_code=201, media_type="application/json")


app = Starlette(
    routes=[Route("/{path:path}", get, methods=["GET"]), Route("/{path:path}", put, methods=["PUT"])]
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    settings = Settings(port=args.port, workers=args.workers, log_level="warning")
    run_granian("bench.ceiling:app", settings)


if __name__ == "__main__":
    main()
