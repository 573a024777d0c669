"""`auto`'s decision, as recorded beside the exported model
(streams/embedding/decision.py): kept for the machine it was made on, refused
for any other, and never half-written."""

from __future__ import annotations

from pathlib import Path

from streams.embedding import decision
from streams.embedding.decision import Decision, record, recorded


def test_a_decision_is_kept_for_its_machine_only(tmp_path: Path) -> None:
    here = decision.machine(2, ("onnx", "onnx-int8"))
    assert here["candidates"] == "torch,onnx,onnx-int8" and here["threads"] == "2"
    assert here["cpu"] and here["torch"] and here["onnxruntime"]
    made = Decision("onnx-int8", {"torch": 15.8, "onnx": 17.9, "onnx-int8": 24.4}, here)
    record(tmp_path, made)
    assert recorded(tmp_path, here) == made
    for changed in ("cpu", "cores", "threads", "torch", "onnxruntime", "candidates", "rule"):
        assert recorded(tmp_path, {**here, changed: "something else"}) is None, changed
    assert [p.name for p in tmp_path.iterdir()] == [decision.FILE], "no temporary file left"


def test_no_file_or_an_unreadable_one_means_deciding_again(tmp_path: Path) -> None:
    here = decision.machine(1, ("onnx",))
    assert recorded(tmp_path, here) is None
    (tmp_path / decision.FILE).write_text("{not json")
    assert recorded(tmp_path, here) is None
    (tmp_path / decision.FILE).write_text('{"backend": "onnx"}')
    assert recorded(tmp_path, here) is None


def test_a_file_of_another_shape_is_no_decision(tmp_path: Path) -> None:
    here = decision.machine(1, ("onnx",))
    for text in ("[1, 2]", '{"backend": 3, "texts_per_s": {}, "machine": {}}', "null"):
        (tmp_path / decision.FILE).write_text(text)
        assert recorded(tmp_path, here) is None, text
