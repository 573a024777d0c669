"""The OpenAPI document names every route the API serves, and nothing else:
a route added or removed without its entry (or an entry without its route)
fails here. The API is built as the worker's composition root builds it
(ops/composition.py build_api and rebuild_control), with fakes behind."""

import re
from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from api.app import create_api
from api.health import Health
from api.intake import Intake
from api.openapi import openapi
from api.rebuild import RebuildControl, rebuild_routes
from api.search import QueryLimits, SearchService
from api.status import DocumentStatus
from core.kafka.producer import Headers
from core.settings import ApiSettings
from schemas.codec import codec_for
from tests.fakes import FakeStore
from tests.profiles import FixedProfile

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


class NoSender:
    async def send_all(self, topic: str, messages: Sequence[tuple[bytes, bytes, Headers]]) -> None:
        raise AssertionError("nothing is sent while routes are listed")


async def no_report() -> dict[str, Any]:
    return {}


def never_started(*_: Any) -> Any:
    raise AssertionError("no job starts while routes are listed")


def full_api() -> Starlette:
    """Every optional part mounted, as the worker with its API mounts it."""
    settings = ApiSettings(api_keys=frozenset({"k"}))
    vectors, graph = FakeStore(), FakeStore()
    search = SearchService(FixedProfile(), vectors, graph, QueryLimits())  # type: ignore[arg-type]
    control = RebuildControl(never_started, settings.api_keys, replay=never_started)
    return create_api(
        search,
        Health({}),
        settings=settings,
        intake=Intake(NoSender(), codec_for("DocumentEvent"), "documents", settings),
        status=DocumentStatus({}, vectors, graph),  # type: ignore[arg-type]
        admin_status=no_report,
        extra_routes=rebuild_routes(control),
    )


def served(api: Starlette) -> set[tuple[str, str]]:
    pairs = set()
    for route in api.routes:
        assert isinstance(route, Route), f"unexpected route kind {route!r}"
        # `{doc_id:path}` is Starlette's converter; OpenAPI names the parameter only.
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        methods = {m.lower() for m in route.methods or ()}
        if "get" in methods:
            methods.discard("head")  # Starlette answers HEAD for every GET by itself
        pairs |= {(path, method) for method in methods}
    return pairs


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_every_served_route_is_documented_and_every_documented_one_served() -> None:
    routes, document = served(full_api()), documented(openapi("test"))
    assert routes - document == set(), "served but not in api/openapi.py"
    assert document - routes == set(), "in api/openapi.py but not served"


def test_the_comparison_sees_path_converters_and_optional_routes() -> None:
    routes = served(full_api())
    assert ("/documents/{doc_id}", "delete") in routes
    assert ("/admin/replay", "get") in routes
    assert ("/query", "head") not in routes


def test_the_served_document_is_the_same_document() -> None:
    from starlette.testclient import TestClient

    body = TestClient(full_api()).get("/openapi.json").json()
    assert documented(body) == documented(openapi("test"))
