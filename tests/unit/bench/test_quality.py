"""The quality benchmark's comparison: int8 (or ONNX fp32) against torch
fp32's dense nDCG@10, from the same invocation when torch ran in it."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from bench.quality import backends, compare


def run(backend: str, dense: float) -> dict[str, Any]:
    return {"backend": backend, "results": {"dense (MiniLM)": {"ndcg@10": dense}}}


def test_a_backend_list_is_parsed_and_an_unknown_name_is_refused() -> None:
    assert backends("torch, onnx-int8") == ["torch", "onnx-int8"]
    with pytest.raises(argparse.ArgumentTypeError, match="onnx-fp16"):
        backends("torch,onnx-fp16")
    with pytest.raises(argparse.ArgumentTypeError):
        backends(",")


def test_int8_is_compared_with_the_torch_run_of_the_same_invocation() -> None:
    verdicts = compare([run("torch", 0.6750), run("onnx-int8", 0.6712)], torch_ndcg=0.9)
    assert verdicts["onnx-int8"]["torch"] == 0.6750
    assert verdicts["onnx-int8"]["delta"] == pytest.approx(-0.0038)
    assert verdicts["onnx-int8"]["within"] is True
    assert "torch" not in verdicts


def test_a_drop_beyond_the_bound_is_not_within() -> None:
    verdicts = compare([run("onnx-int8", 0.6690)], torch_ndcg=0.6750)
    assert verdicts["onnx-int8"]["within"] is False


def test_without_a_torch_figure_nothing_is_judged() -> None:
    assert compare([run("onnx-int8", 0.67)], torch_ndcg=None) == {}
