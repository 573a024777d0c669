import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from schemas.compatibility import full_compatibility_problems, reader_problems
from schemas.registry import SCHEMA_DIR
from schemas.release import check, release

CURRENT = json.loads((SCHEMA_DIR / "DocumentEvent.avsc").read_text())


def with_fields(fields: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(CURRENT, fields=fields)


def test_identical_schemas_are_compatible() -> None:
    assert full_compatibility_problems(CURRENT, CURRENT) == []


def test_a_new_field_with_a_default_is_compatible_both_ways() -> None:
    new = with_fields([*CURRENT["fields"], {"name": "lang", "type": "string", "default": "en"}])
    assert full_compatibility_problems(new, CURRENT) == []


def test_a_new_required_field_breaks_backward_compatibility() -> None:
    new = with_fields([*CURRENT["fields"], {"name": "lang", "type": "string"}])
    problems = full_compatibility_problems(new, CURRENT)
    assert problems == [
        "backward (new reads old): /lang: the reader needs this field, the writer lacks it, "
        "and it has no default"
    ]


def test_removing_a_field_without_default_breaks_forward_compatibility() -> None:
    new = with_fields([f for f in CURRENT["fields"] if f["name"] != "version"])
    problems = full_compatibility_problems(new, CURRENT)
    assert len(problems) == 1 and problems[0].startswith("forward (old reads new): /version")


def test_promotions_follow_the_avro_rules() -> None:
    assert reader_problems("long", "int") == []
    assert reader_problems("double", "float") == []
    assert reader_problems("int", "long") == ["/: reader expects int, writer wrote long"]
    assert reader_problems(["null", "string"], "string") == []
    assert reader_problems("string", ["null", "string"]) != []


def test_enum_symbols_need_a_default_to_grow() -> None:
    old = {"type": "enum", "name": "E", "symbols": ["A"]}
    new = {"type": "enum", "name": "E", "symbols": ["A", "B"]}
    assert reader_problems(old, new) != []
    assert reader_problems(dict(old, default="A"), new) == []


@pytest.fixture
def schema_dir(tmp_path: Path) -> Path:
    shutil.copytree(
        SCHEMA_DIR, tmp_path / "schemas", ignore=shutil.ignore_patterns("*.py", "__pycache__")
    )
    return tmp_path / "schemas"


def test_the_check_fails_on_an_incompatible_working_tree_change(schema_dir: Path) -> None:
    path = schema_dir / "DocumentEvent.avsc"
    path.write_text(
        json.dumps(with_fields([*CURRENT["fields"], {"name": "lang", "type": "string"}]))
    )
    results = {r.name: r for r in check(schema_dir)}
    assert results["DocumentEvent"].problems
    with pytest.raises(ValueError, match="not compatible"):
        release(schema_dir)


def test_a_compatible_change_is_released_as_the_next_version(schema_dir: Path) -> None:
    new = with_fields([*CURRENT["fields"], {"name": "lang", "type": "string", "default": "en"}])
    (schema_dir / "DocumentEvent.avsc").write_text(json.dumps(new))
    result = {r.name: r for r in check(schema_dir)}["DocumentEvent"]
    assert result.changed and not result.problems
    assert [p.name for p in release(schema_dir)] == ["DocumentEvent.v2.avsc"]
    assert not any(r.changed for r in check(schema_dir))


def test_the_shipped_schemas_match_their_last_release() -> None:
    assert all(not r.changed and not r.problems for r in check())
