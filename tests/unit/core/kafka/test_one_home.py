"""Kafka has one home: no runtime module outside core/kafka imports a Kafka
client library, the Faust app's own setup excepted, so the security settings
that core/kafka applies reach every client (checked on the source)."""

from __future__ import annotations

from pathlib import Path

from tests.unit.ops.test_composition import REPO, imported_modules

RUNTIME = ("api", "core", "ops", "schemas", "sinks", "streams")
CLIENT_LIBRARIES = ("confluent_kafka", "aiokafka", "kafka")
# The Faust app and what builds it; core/kafka/config.py gives it its settings.
FAUST_SETUP = {"streams/app.py", "streams/producer.py", "ops/composition.py"}


def offenders(root: Path = REPO) -> list[str]:
    found = []
    for room in RUNTIME:
        for path in sorted((root / room).rglob("*.py")):
            where = path.relative_to(root).as_posix()
            if where.startswith("core/kafka/"):
                continue
            for module in imported_modules(path):
                top = module.split(".")[0]
                if top in CLIENT_LIBRARIES or (top == "faust" and where not in FAUST_SETUP):
                    found.append(f"{where}: {module}")
    return found


def test_no_runtime_module_outside_core_kafka_imports_a_kafka_client() -> None:
    assert offenders() == []


def test_the_check_finds_an_import_anywhere_in_a_module(tmp_path: Path) -> None:
    # schemas/confluent.py once imported confluent_kafka inside a method.
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "x.py").write_text(
        "def f():\n    from confluent_kafka.schema_registry import SchemaRegistryClient\n"
    )
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "y.py").write_text("import faust\n")
    (tmp_path / "core" / "kafka").mkdir(parents=True)
    (tmp_path / "core" / "kafka" / "z.py").write_text("import confluent_kafka\n")
    assert offenders(tmp_path) == [
        "api/y.py: faust",
        "schemas/x.py: confluent_kafka.schema_registry",
    ]
