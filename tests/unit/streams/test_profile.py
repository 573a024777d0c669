"""The one holder of the processing profile: what a replay's switch changes,
and what every reader (stages, query service) then sees."""

from __future__ import annotations

from prometheus_client import REGISTRY

from core.types import CurrentProfile
from streams.profile import LiveProfile, Processing, Profile
from tests.fakes import FakeEmbedder
from tests.profiles import word_chunker


class NamedEmbedder(FakeEmbedder):
    def __init__(self, model_name: str) -> None:
        super().__init__()
        self.model_name = model_name  # type: ignore[misc]


def processing(model: str = "fake", max_tokens: int = 2) -> Processing:
    return Processing(Profile(model, max_tokens, 0), word_chunker(max_tokens), NamedEmbedder(model))


def exported(profile: Profile, configured: str) -> float | None:
    labels = {
        "model": profile.model,
        "max_tokens": str(profile.max_tokens),
        "overlap_tokens": str(profile.overlap_tokens),
        "configured": configured,
    }
    return REGISTRY.get_sample_value("docstream_profile", labels)


def test_a_profile_names_the_settings_that_make_it_the_configured_one() -> None:
    profile = Profile("all-MiniLM-L6-v2", 120, 16)
    assert profile.settings() == {
        "DOCSTREAM_EMBED_MODEL": "all-MiniLM-L6-v2",
        "DOCSTREAM_CHUNK_MAX_TOKENS": "120",
        "DOCSTREAM_CHUNK_OVERLAP_TOKENS": "16",
    }
    assert profile.digest != Profile("all-MiniLM-L6-v2", 200, 16).digest
    assert profile.digest != Profile("other-model", 120, 16).digest
    assert profile.digest == Profile("all-MiniLM-L6-v2", 120, 16).digest


def test_the_holder_serves_the_configured_profile_until_a_replay_switches_it() -> None:
    old, new = processing(max_tokens=200), processing(max_tokens=5)
    live = LiveProfile(old)
    reader: CurrentProfile = live  # what the stages and the query service are given
    assert (reader.chunker, reader.embedder, reader.digest) == (
        old.chunker,
        old.embedder,
        old.profile.digest,
    )
    assert exported(old.profile, "true") == 1
    live.adopt(new)
    assert reader.chunker is new.chunker and reader.embedder is new.embedder
    assert reader.digest == new.profile.digest != old.profile.digest
    assert live.profile == new.profile and live.configured == old.profile
    assert not reader.retired("fake"), "the same model stays in use"
    assert exported(new.profile, "false") == 1, "in use, not yet configured"
    assert exported(old.profile, "true") is None, "one profile is exported: the one in use"


def test_a_replay_with_another_model_retires_the_old_one() -> None:
    live = LiveProfile(processing("fake"))
    live.adopt(processing("newer"))
    assert live.retired("fake") and not live.retired("newer")
    live.adopt(processing("fake"))  # and back: the model in use is never retired
    assert live.retired("newer") and not live.retired("fake")


def test_a_state_is_current_when_cut_by_the_profile_in_use() -> None:
    old, new = processing(max_tokens=200), processing(max_tokens=5)
    live = LiveProfile(old)
    assert live.cut_by_current(old.profile.digest) and live.cut_by_current("")
    live.adopt(new)
    assert live.cut_by_current(new.profile.digest)
    assert not live.cut_by_current(old.profile.digest)
    assert not live.cut_by_current(""), "written before the replay: by the old profile"


def test_a_switch_replaces_chunker_embedder_and_digest_together() -> None:
    """A reader that takes the current processing never sees the chunker of
    one profile with the embedder of another."""
    old, new = processing("fake", 200), processing("newer", 5)
    live = LiveProfile(old)
    before = live.current
    live.adopt(new)
    assert before is old and live.current is new
