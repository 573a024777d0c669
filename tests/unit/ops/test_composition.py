"""The composition root wires at construction and is the only room that
knows api/: checked on the source, and by building the API as the worker does."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from starlette.testclient import TestClient

from api.rebuild import rebuild_routes
from core.settings import ApiSettings, Neo4jSettings, Settings
from ops.composition import build_api, rebuild_control
from schemas.codec import Codecs
from streams.profile import LiveProfile, Processing, Profile
from tests.fakes import FakeEmbedder, FakeStore
from tests.profiles import word_chunker

REPO = Path(__file__).resolve().parents[3]
ROOMS = ("core", "schemas", "streams", "sinks", "ops", "tools")
COMPOSITION = REPO / "ops" / "composition.py"


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def test_only_the_composition_root_imports_the_http_edge() -> None:
    offenders = [
        f"{path.relative_to(REPO)}: {module}"
        for room in ROOMS
        for path in sorted((REPO / room).rglob("*.py"))
        if path != COMPOSITION
        for module in imported_modules(path)
        if module == "api" or module.startswith("api.")
    ]
    assert offenders == []


def test_the_composition_root_sets_no_attribute_on_what_it_built() -> None:
    """Its functions build objects and hand them over; none is patched later."""
    assigned = [
        f"{COMPOSITION.name}:{node.lineno}"
        for node in ast.walk(ast.parse(COMPOSITION.read_text(), str(COMPOSITION)))
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Attribute)
    ]
    assert assigned == []


@dataclass
class Vectors(FakeStore):
    location: str = "memory"
    alias: str = "chunks"


class Graph(FakeStore):
    settings = Neo4jSettings()


def test_the_worker_api_is_built_with_the_admin_job_routes_mounted() -> None:
    settings = Settings(api=ApiSettings(api_keys=frozenset({"k"})))
    live = LiveProfile(Processing(Profile("fake", 2, 0), word_chunker(), FakeEmbedder()))
    vectors, graph = Vectors(), Graph()
    control = rebuild_control(settings, Codecs.create(), vectors, graph, live)  # type: ignore[arg-type]
    app = build_api(
        settings,
        live,
        vectors,  # type: ignore[arg-type]
        graph,  # type: ignore[arg-type]
        current=live.cut_by_current,
        extra_routes=rebuild_routes(control),
    )
    with TestClient(app) as api:
        answer = api.get("/admin/rebuild", headers={"X-API-Key": "k"})
        assert answer.status_code == 200 and answer.json() == {"running": False, "targets": []}
        assert api.get("/admin/replay").status_code == 401, "mounted, behind the admin key"
