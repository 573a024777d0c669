"""Where the benchmarks find the SciFact dev split, and what they say when it
is not there.

The benchmarks measure on a real dataset that the repository does not carry
(its licence is CC BY-NC 2.0): the BEIR release of SciFact, of which they read
`corpus.jsonl` (5,183 abstracts), `queries.jsonl` (the claims) and
`qrels/train.tsv` (the judgments of 809 of them: the "dev" split here, as
BEIR's test judgments are kept for published figures). DOCSTREAM_SCIFACT_DIR
names the folder; without it, `../shared/datasets/scifact-dev` beside the
checkout. Every file is opened through `path`, so a benchmark without the data
ends with one message that says what is missing and where it comes from,
instead of a traceback. (The tests never read it: tests/corpus.py.)"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETTING = "DOCSTREAM_SCIFACT_DIR"
DEFAULT = REPO.parent / "shared" / "datasets" / "scifact-dev"
FILES = ("corpus.jsonl", "queries.jsonl", "qrels/train.tsv")
SOURCE = (
    "BEIR's SciFact (https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/"
    "scifact.zip; CC BY-NC 2.0): unzip it and set DOCSTREAM_SCIFACT_DIR to the folder "
    f"that holds {', '.join(FILES)}"
)


class DatasetMissing(SystemExit):
    """The benchmark's data is not there: not a bug, so it ends the run with
    this message on stderr (exit status 1), not with a traceback."""


def location(env: Mapping[str, str] = os.environ) -> Path:
    """The dataset folder the settings name (it may not exist)."""
    named = env.get(SETTING, "").strip()
    return Path(named).expanduser() if named else DEFAULT


def path(dataset: Path, name: str) -> Path:
    """`dataset/name`, or DatasetMissing when that file is not there."""
    file = dataset / name
    if not file.is_file():
        raise DatasetMissing(
            f"the SciFact dataset is not at {dataset} ({name} is missing). "
            f"The benchmarks need {SOURCE}."
        )
    return file


DATASET = location()
