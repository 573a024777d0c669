"""Avro schema compatibility, by the resolution rules of the Avro specification.

`reader_problems(reader, writer)` lists why data written with `writer` could not
be read with `reader`; an empty list means it can. A change is *backward*
compatible when the new schema reads old data, *forward* compatible when the old
schema reads new data; docstream requires both (full compatibility) between the
working tree and the last released version, so producers and consumers can be
upgraded in any order.
"""

from __future__ import annotations

from typing import Any

PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
# writer type → reader types it promotes to (Avro spec, "Schema Resolution").
PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}

Named = dict[str, dict[str, Any]]


def _collect_names(schema: Any, names: Named, namespace: str = "") -> None:
    if isinstance(schema, list):
        for branch in schema:
            _collect_names(branch, names, namespace)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "enum", "fixed"):
            namespace = schema.get("namespace", namespace)
            full = schema["name"] if "." in schema["name"] else f"{namespace}.{schema['name']}"
            names[full.lstrip(".")] = schema
            names.setdefault(schema["name"].split(".")[-1], schema)
            for field in schema.get("fields", []):
                _collect_names(field["type"], names, namespace)
        elif kind == "array":
            _collect_names(schema["items"], names, namespace)
        elif kind == "map":
            _collect_names(schema["values"], names, namespace)
        elif isinstance(kind, dict | list):
            _collect_names(kind, names, namespace)


def _resolve(schema: Any, names: Named) -> Any:
    """Named references become their definitions; {"type": "int", …} becomes "int"."""
    if isinstance(schema, str):
        return names.get(schema, names.get(schema.split(".")[-1], schema))
    if isinstance(schema, dict) and (
        schema.get("type") in PRIMITIVES or isinstance(schema.get("type"), dict | list)
    ):
        return _resolve(schema["type"], names)
    return schema


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, str):
        return schema
    return str(schema["type"])


class _Checker:
    def __init__(self, reader: Any, writer: Any) -> None:
        self.reader_names: Named = {}
        self.writer_names: Named = {}
        _collect_names(reader, self.reader_names)
        _collect_names(writer, self.writer_names)
        self.seen: set[tuple[int, int]] = set()

    def check(self, reader: Any, writer: Any, path: str) -> list[str]:
        reader, writer = _resolve(reader, self.reader_names), _resolve(writer, self.writer_names)
        key = (id(reader), id(writer))
        if key in self.seen:  # recursive types: already being checked
            return []
        self.seen.add(key)
        r_kind, w_kind = _kind(reader), _kind(writer)
        if w_kind == "union":
            return [p for i, b in enumerate(writer) for p in self.check(reader, b, f"{path}<{i}>")]
        if r_kind == "union":
            if any(not self._quiet(branch, writer, path) for branch in reader):
                return []
            return [f"{path or '/'}: no branch of the reader's union reads a writer's {w_kind}"]
        if r_kind != w_kind:
            if w_kind in PROMOTIONS and r_kind in PROMOTIONS[w_kind]:
                return []
            return [f"{path or '/'}: reader expects {r_kind}, writer wrote {w_kind}"]
        return self._same_kind(r_kind, reader, writer, path)

    def _quiet(self, reader: Any, writer: Any, path: str) -> list[str]:
        saved = set(self.seen)
        problems = self.check(reader, writer, path)
        self.seen = saved
        return problems

    def _same_kind(self, kind: str, reader: Any, writer: Any, path: str) -> list[str]:
        if kind == "record":
            return self._record(reader, writer, path)
        if kind == "enum":
            missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
            if missing and "default" not in reader:
                return [
                    f"{path or '/'}: the reader's enum {reader['name']} lacks {missing} "
                    "and has no default"
                ]
            return []
        if kind == "array":
            return self.check(reader["items"], writer["items"], f"{path}[]")
        if kind == "map":
            return self.check(reader["values"], writer["values"], f"{path}{{}}")
        if kind == "fixed" and reader.get("size") != writer.get("size"):
            return [f"{path or '/'}: fixed size {writer.get('size')} read as {reader.get('size')}"]
        return []

    def _record(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> list[str]:
        names = {writer["name"].split(".")[-1], *writer.get("aliases", [])}
        if reader["name"].split(".")[-1] not in names and not names & set(
            reader.get("aliases", [])
        ):
            return [f"{path or '/'}: record {writer['name']} read as {reader['name']}"]
        by_name: dict[str, dict[str, Any]] = {}
        for field in writer["fields"]:
            for name in (field["name"], *field.get("aliases", [])):
                by_name[name] = field
        problems: list[str] = []
        for field in reader["fields"]:
            where = f"{path}/{field['name']}"
            source = next(
                (by_name[n] for n in (field["name"], *field.get("aliases", [])) if n in by_name),
                None,
            )
            if source is not None:
                problems += self.check(field["type"], source["type"], where)
            elif "default" not in field:
                problems.append(
                    f"{where}: the reader needs this field, the writer lacks it, "
                    "and it has no default"
                )
        return problems


def reader_problems(reader: Any, writer: Any) -> list[str]:
    return _Checker(reader, writer).check(reader, writer, "")


def full_compatibility_problems(new: Any, old: Any) -> list[str]:
    backward = [f"backward (new reads old): {p}" for p in reader_problems(new, old)]
    forward = [f"forward (old reads new): {p}" for p in reader_problems(old, new)]
    return backward + forward
