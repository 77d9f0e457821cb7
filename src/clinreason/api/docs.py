"""/docs (Swagger UI) and /redoc served offline: the JS and CSS come from a Python package, not a CDN.

FastAPI's own pages load Swagger UI and ReDoc from cdn.jsdelivr.net, so on a
network without internet access /docs is a blank page. The assets here come
from the `fastapi-offline` package (Swagger UI 5, which renders the OpenAPI 3.1
document FastAPI writes, and ReDoc 2); only its static files are used.
(`swagger-ui-bundle` ships Swagger UI 4, which renders OpenAPI 3.0 only, and no
ReDoc.) The assets are mounted under /docs/assets, so the audit log, which skips
/docs, skips them too.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"


def assets_dir() -> Path:
    try:
        return Path(str(files("fastapi_offline") / "static"))
    except ModuleNotFoundError:
        raise ModuleNotFoundError("the API's /docs assets come from the fastapi-offline package: pip install fastapi-offline "
                                  "(it is in the api extra)") from None


def install_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Serve Swagger UI at `docs_url` and ReDoc at `redoc_url` from local assets.

    Create the app with `docs_url=None, redoc_url=None` (FastAPI's CDN pages)."""
    app.mount(ASSETS, StaticFiles(directory=assets_dir()), name="docs-assets")

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        r = root(request)
        return get_swagger_ui_html(
            openapi_url=f"{r}{app.openapi_url}", title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{r}{ASSETS}/swagger-ui-bundle.js", swagger_css_url=f"{r}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{r}{ASSETS}/favicon.png", oauth2_redirect_url=None,
            # validatorUrl: no badge fetched from validator.swagger.io
            swagger_ui_parameters={"validatorUrl": None, **(app.swagger_ui_parameters or {})},
        )

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        r = root(request)
        return get_redoc_html(openapi_url=f"{r}{app.openapi_url}", title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{r}{ASSETS}/redoc.standalone.js", redoc_favicon_url=f"{r}{ASSETS}/favicon.png",
                              with_google_fonts=False)
