import pytest

from api.fusion import fuse
from tests.fakes import hit


def test_rrf_rewards_agreement_between_retrievers() -> None:
    fused = fuse(
        {
            "dense": [hit("a"), hit("b"), hit("c")],
            "lexical": [hit("c"), hit("b"), hit("x")],
        }
    )
    assert [f.hit.chunk_id for f in fused] == ["c", "b", "a", "x"]
    assert fused[0].ranks == {"dense": 3, "lexical": 1}
    assert fused[0].score == pytest.approx(1 / 63 + 1 / 61)
    assert fused[1].score == pytest.approx(2 / 62)


def test_weights_shift_the_balance() -> None:
    ranked = {"dense": [hit("d")], "lexical": [hit("l")]}
    assert fuse(ranked, weights={"dense": 2.0})[0].hit.chunk_id == "d"
    assert fuse(ranked, weights={"lexical": 2.0})[0].hit.chunk_id == "l"


def test_weighted_fusion_scales_each_list() -> None:
    ranked = {
        "dense": [hit("a", score=0.9), hit("b", score=0.1)],
        "lexical": [hit("b", score=30.0), hit("a", score=10.0)],
    }
    fused = fuse(ranked, method="weighted", weights={"dense": 1.0, "lexical": 0.5})
    assert [f.hit.chunk_id for f in fused] == ["a", "b"]
    assert fused[0].score == pytest.approx(1.0)


def test_unknown_fusion_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fusion"):
        fuse({}, method="borda")
