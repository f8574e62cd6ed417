"""/docs: Swagger UI from the pinned fastapi-offline package (its bundled assets only: its own page
initialises Swagger UI in an inline script), every asset same-origin, so the page runs under a
Content-Security-Policy without inline or third-party scripts."""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"

# The initialiser is static/js/api-docs.js (no inline script); it reads the schema's URL from
# the data attribute.
PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{{title}} - API docs</title>
  <link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
  <link rel="icon" href="{ASSETS}/favicon.png">
</head>
<body>
  <div id="swagger-ui" data-openapi-url="{{openapi_url}}"></div>
  <script src="{ASSETS}/swagger-ui-bundle.js"></script>
  <script src="/js/api-docs.js"></script>
</body>
</html>
"""


def install_docs(app: FastAPI) -> None:
    """Serve /docs and its assets. Create the app with docs_url=None and redoc_url=None: FastAPI's
    own pages load unpinned scripts from a CDN and initialise them inline."""
    html = PAGE.format(title=app.title, openapi_url=app.openapi_url)
    assets = files("fastapi_offline") / "static"
    app.mount(ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(html)
