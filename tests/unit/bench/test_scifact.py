"""Where the benchmarks find SciFact, and what they say without it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench import scifact
from bench.scifact import DatasetMissing, location, path


def test_the_setting_names_the_folder_and_its_absence_the_default() -> None:
    assert location({"DOCSTREAM_SCIFACT_DIR": "/data/scifact"}) == Path("/data/scifact")
    assert location({}) == scifact.DEFAULT
    assert scifact.DEFAULT.parts[-3:] == ("shared", "datasets", "scifact-dev")


def test_a_missing_file_says_which_where_it_comes_from_and_which_files(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text("{}\n")
    assert path(tmp_path, "corpus.jsonl") == tmp_path / "corpus.jsonl"
    with pytest.raises(DatasetMissing) as missing:
        path(tmp_path, "qrels/train.tsv")
    message = str(missing.value)
    assert str(tmp_path) in message and "qrels/train.tsv is missing" in message
    assert "DOCSTREAM_SCIFACT_DIR" in message and "scifact.zip" in message
    assert all(name in message for name in scifact.FILES)


def test_a_benchmark_without_the_data_ends_with_the_message_not_a_traceback(
    tmp_path: Path,
) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.query_embed", "--queries", "5"],
        cwd=scifact.REPO,
        env={"PATH": "/usr/bin:/bin", "DOCSTREAM_SCIFACT_DIR": str(tmp_path / "nowhere")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "the SciFact dataset is not at" in run.stderr and "scifact.zip" in run.stderr
