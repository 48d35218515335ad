"""The API documentation page at `/docs`: Swagger UI over `/v2/openapi.json`, every asset served from here.

Many installs have no internet, so nothing comes from a CDN: the Swagger UI files are the ones the
`swagger-ui-py` package ships (found without importing it), served under `/docs/assets/`, and the page's own
script is a file too, so the Content-Security-Policy can allow this origin only. Swagger UI's default
validator badge would call validator.swagger.io; it is turned off.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from satchel.api.errors import error_response

PREFIX = "/docs"
ASSETS = PREFIX + "/assets/"
# The Swagger UI files the page uses; nothing else in the package's folder is served.
SWAGGER_FILES = frozenset(
    {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "favicon-16x16.png"}
)
INIT_SCRIPT = "satchel-docs.js"
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'"
)

PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Satchel API</title>
  <link rel="stylesheet" href="{ASSETS}swagger-ui.css">
  <link rel="icon" type="image/png" href="{ASSETS}favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{ASSETS}swagger-ui-bundle.js"></script>
  <script src="{ASSETS}{INIT_SCRIPT}"></script>
</body>
</html>
"""

INIT = """window.ui = SwaggerUIBundle({
  url: "/v2/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  docExpansion: "none",
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
"""


def swagger_folder() -> Path:
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        raise RuntimeError("The swagger-ui-py package is missing: reinstall Satchel with its dependencies.")
    return Path(spec.origin).parent / "static"


class DocsPage:
    def __init__(self) -> None:
        self.files = StaticFiles(directory=swagger_folder())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        name = path.removeprefix(ASSETS) if path.startswith(ASSETS) else None
        if scope["method"] not in ("GET", "HEAD"):
            response = error_response(405, "method-not-allowed", "The documentation is read with GET.")
            response.headers["allow"] = "GET, HEAD"
        elif path in (PREFIX, PREFIX + "/"):
            response = HTMLResponse(
                PAGE, headers={"content-security-policy": CSP, "cache-control": "no-cache"}
            )
        elif name == INIT_SCRIPT:
            response = Response(INIT, media_type="text/javascript", headers={"cache-control": "no-cache"})
        elif name in SWAGGER_FILES:
            await self.files({**scope, "path": "/" + name, "root_path": ""}, receive, send)
            return
        else:
            response = error_response(
                404, "page-not-found", f"There is no documentation file at {path[:200]}."
            )
        await response(scope, receive, send)
