"""The README's "Operations" block, run as written on the real stack.

The commands are read from the README itself, so it cannot drift from the CLI:
each line runs in order (`.venv/bin/docstream` as this interpreter's
`-m ops.cli`) against this module's worker, and its exit code and key output
line are checked. The CLI gets no key in its environment: it finds the worker's
admin key in the stack's key file, as on the `make run` stack. The corpus is
the README's own (samples/corpus: a few documents), so the replay line runs too.

A dead letter for `dlq show` and `dlq redrive` comes through the real pipeline:
a document of whitespace only, which the publisher accepts and the chunker
dead-letters (streams/stages.check_indexable)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from neo4j import Driver

from ops.admin_key import stack_key_path
from tests.integration.conftest import REPO, TEST_API_KEY, Pipeline
from tests.integration.helpers import eventually

pytestmark = pytest.mark.integration
# Topics and a graph of its own: a replay reads every document of its topic.
OWN_TOPICS = "runbook"
ENGINES = ("edge", "server")
DOCSTREAM = ".venv/bin/docstream"

# Each command the block must hold, and the line its output must show.
REQUIRED: dict[tuple[str, ...], str] = {
    ("status",): r"^  consumer embedder ",
    ("publish",): r'"sent": [1-9]',
    ("rebuild",): r"^\[rebuild\] (qdrant|neo4j)\s+done ",
    ("rebuild", "--from-time"): r"^\[rebuild\] (qdrant|neo4j)\s+done ",
    ("replay",): r"^\[replay\] replay\s+done ",
    ("dlq", "list"): r"^chunker \(\d+\): .*text is empty",
    ("dlq", "show"): r"text is empty",
    ("dlq", "redrive"): r'"redriven": [1-9]',
}


def operations_block(readme: str) -> list[list[str]]:
    """The command lines of the README's "Operations" code block, comments dropped."""
    section = readme.split("\n## Operations\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the README's Operations section has no bash block"
    return [shlex.split(line, comments=True) for line in block.group(1).splitlines() if line]


def kind(argv: list[str]) -> tuple[str, ...]:
    """Which REQUIRED command a line is (the longest match)."""
    args = argv[1:]
    matches = [k for k in REQUIRED if tuple(a for a in args if a in k) == k and args[0] == k[0]]
    assert matches, f"a README command this test does not know: {shlex.join(argv)}"
    return max(matches, key=len)


@pytest.fixture(scope="module")
def cli_env(pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The worker's environment with no key in it: the key is in the stack's file."""
    stack_dir = tmp_path_factory.mktemp("stack")
    key_file = stack_key_path(stack_dir)
    key_file.write_text(TEST_API_KEY + "\n")
    key_file.chmod(0o600)
    env = {k: v for k, v in pipeline.env.items() if k != "DOCSTREAM_API_KEYS"}
    return {**env, "DOCSTREAM_STACK_DIR": str(stack_dir)}


def run(argv: list[str], env: dict[str, str], stdin: bytes | None = None) -> tuple[int, str, str]:
    """A README line as this interpreter's `-m ops.cli`: exit code, stdout, stderr."""
    assert argv[0] == DOCSTREAM, argv
    done = subprocess.run(
        [sys.executable, "-m", "ops.cli", *argv[1:]],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        timeout=300,
    )
    return (
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
    )


@pytest.fixture(scope="module")
def poison(cli_env: dict[str, str], pipeline: Pipeline, neo4j_driver: Driver) -> Iterator[str]:
    """A document the publisher sends and the chunker dead-letters; yields its REF."""
    own = pipeline.name
    doc_id = f"{own}-blank"
    line = json.dumps({"doc_id": doc_id, "text": "   "}).encode() + b"\n"
    code, out, err = run([DOCSTREAM, "publish", "-"], cli_env, stdin=line)
    assert code == 0, out + err

    def ref() -> str | None:
        code, out, err = run([DOCSTREAM, "dlq", "list", "--json", "--limit", "0"], cli_env)
        assert code == 0, out + err
        letters = json.loads(out)["dead_letters"]
        return next((d["ref"] for d in letters if d["key"] == doc_id), None)

    yield eventually(ref, "the blank document dead-lettered by the chunker")
    neo4j_driver.execute_query(
        "MATCH (n) WHERE n.gen STARTS WITH $own + ':' OR n.name = $own DETACH DELETE n", own=own
    )


def test_the_readme_operations_block_runs_as_written(
    pipeline: Pipeline, cli_env: dict[str, str], poison: str
) -> None:
    lines = operations_block((REPO / "README.md").read_text())
    kinds = [kind(argv) for argv in lines]
    missing = [" ".join(k) for k in REQUIRED if k not in kinds]
    assert not missing, f"the README's Operations block lacks: {missing}"
    # Status again at the end: the pipeline is still whole after all of it.
    for argv, what in [*zip(lines, kinds, strict=True), (lines[0], kinds[0])]:
        argv = [poison if a == "REF" else a for a in argv]
        code, out, err = run(argv, cli_env)
        command = shlex.join(argv)
        assert code == 0, f"{command} exited {code}:\n{out[-2000:]}\n{err[-2000:]}"
        assert re.search(REQUIRED[what], out, re.M), f"{command}: no {REQUIRED[what]!r} in\n{out}"


def test_status_opens_the_admin_view_with_the_stack_key_and_says_why_without(
    cli_env: dict[str, str], engine: str, tmp_path: Path
) -> None:
    code, out, err = run([DOCSTREAM, "status", "--json"], cli_env)
    assert code == 0, out + err
    report = json.loads(out)
    assert report["qdrant"]["active"], "counted by the worker, asked with the file's key"
    assert set(report["pipeline"]["consumers"]) >= {"embedder", "qdrant-sink", "neo4j-sink"}
    assert all(
        c["state"] in ("running", "busy") for c in report["pipeline"]["consumers"].values()
    ), report["pipeline"]["consumers"]

    no_key = {**cli_env, "DOCSTREAM_STACK_DIR": str(tmp_path)}
    code, out, err = run([DOCSTREAM, "status"], no_key)
    if engine == "server":
        # Only an embedded Qdrant is read through the worker (it admits one
        # process); a server answers the CLI itself, key or no key.
        assert code == 0, out + err
        assert re.search(r"^  \S+-g\d+: \d+ chunks \(server\)$", out, re.M), out
    else:
        assert code == 1, out + err
        assert "unreachable: qdrant (the worker's /admin/status at http://" in err
        assert "needs an admin key" in err and "make run" in out
    assert os.path.exists(stack_key_path(Path(cli_env["DOCSTREAM_STACK_DIR"])))
