"""The sinks' batch settings: large batches by default (a sink's cost is
mostly per write), both overridable from the environment."""

from __future__ import annotations

import pytest

from core.settings import Settings


def test_sinks_batch_as_much_as_the_backlog_holds_by_default() -> None:
    sink = Settings.from_env({}).sink
    assert sink.batch_size == 1000
    assert sink.batch_within_s == 0.05


def test_sink_batches_come_from_the_environment() -> None:
    sink = Settings.from_env({"DOCSTREAM_SINK_BATCH": "250", "DOCSTREAM_SINK_WITHIN_S": "0.2"}).sink
    assert (sink.batch_size, sink.batch_within_s) == (250, 0.2)


def test_a_bad_sink_batch_names_its_variable() -> None:
    with pytest.raises(ValueError, match="DOCSTREAM_SINK_BATCH"):
        Settings.from_env({"DOCSTREAM_SINK_BATCH": "lots"})
