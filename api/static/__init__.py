"""The search page at `/`: one static HTML file with its script inline, no
build step. It queries with the browser's own EventSource (follow mode
included) and shows a document's status on click."""

from __future__ import annotations

from importlib.resources import files

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

PAGE = "index.html"


def page() -> str:
    return files(__package__).joinpath(PAGE).read_text(encoding="utf-8")


def page_routes() -> list[BaseRoute]:
    html = page()  # read once: it ships inside the package

    async def index(request: Request) -> Response:
        return HTMLResponse(html, headers={"cache-control": "no-cache"})

    return [Route("/", index, methods=["GET"])]
