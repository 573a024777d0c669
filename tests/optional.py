"""What a test may take from outside the checkout, and how it asks for it.

A clone on its own passes `make test`: nothing here is needed for that. Each
input below adds a pass of tests when it is there, found through one
documented setting; when it is not, the tests that need it are skipped with
the reason, and the end of the run prints one line per missing input saying
what it would add and how to provide it. DOCSTREAM_TEST_REQUIRE names the
inputs that must be there (CI sets it): a required input that is missing fails
the run instead of skipping it.

The guard in tests/conftest.py lets a test open files beside the checkout only
under the paths these settings name."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REQUIRE = "DOCSTREAM_TEST_REQUIRE"


@dataclass(frozen=True)
class OptionalInput:
    name: str  # what DOCSTREAM_TEST_REQUIRE calls it
    setting: str | None  # the environment variable that provides it, if one does
    adds: str  # what runs when it is there
    provide: str  # how to provide it

    def skip_reason(self) -> str:
        return f"{self.name} not available ({self.adds} not run): {self.provide}"


QDRANT_SERVER = OptionalInput(
    "qdrant-server",
    "QDRANT_BIN",
    "the vector-store tests against a Qdrant server",
    "set QDRANT_BIN to a Qdrant server binary (1.x), or put `qdrant` on PATH",
)
CUDA = OptionalInput(
    "cuda",
    None,
    "the embedder's tests on a CUDA GPU",
    "run on a machine where torch sees a CUDA device",
)
INPUTS = (QDRANT_SERVER, CUDA)


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def required(env: Mapping[str, str] = os.environ) -> set[str]:
    """The inputs DOCSTREAM_TEST_REQUIRE names (comma-separated); an unknown
    name is refused so that a typo cannot make a requirement vanish."""
    names = {n.strip() for n in env.get(REQUIRE, "").split(",") if n.strip()}
    unknown = names - {i.name for i in INPUTS}
    if unknown:
        known = ", ".join(i.name for i in INPUTS)
        raise ValueError(f"{REQUIRE} names {sorted(unknown)}; known inputs: {known}")
    return names


def allowed_paths(env: Mapping[str, str] = os.environ) -> list[Path]:
    """Paths outside the checkout that a setting named: a test may read there."""
    paths = []
    for item in INPUTS:
        value = env.get(item.setting, "").strip() if item.setting else ""
        if value and ("/" in value or value.startswith(".")):
            paths.append(Path(value).expanduser().resolve())
    return paths


MISSING: set[str] = set()  # the inputs this run went without


def need(item: OptionalInput, available: bool) -> None:
    """Call from a fixture: returns when `item` is available; otherwise fails
    the test (the input is required) or skips it and remembers the input for
    the run's summary line."""
    import pytest

    if available:
        return
    if item.name in required():
        pytest.fail(f"{REQUIRE} requires {item.name}: {item.skip_reason()}", pytrace=False)
    MISSING.add(item.name)
    pytest.skip(item.skip_reason())
