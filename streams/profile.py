"""The processing profile (chunker settings and embedding model) and the one
holder of the profile the worker runs.

The composition root makes one `LiveProfile` and hands it to the chunk stage,
the embed stage, the sink stages and the query service, which read it whenever
they need the chunker, the embedder, the digest or whether a model was
retired. A replay's switch (`ops/jobs/replay.py`) calls `adopt`, which changes
this holder alone, in one step: every reader sees the new profile at once.

After the switch the sinks skip vectors of the old model still in flight. The
worker's configuration is not rewritten: until it names the same profile, a
restart brings the old one back, and the log and a metric say so.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from core.logs import get_logger
from core.metrics import PROFILE
from core.types import Chunker, Embedder

log = get_logger(__name__)


@dataclass(frozen=True)
class Profile:
    """What turns a document into vectors."""

    model: str
    max_tokens: int
    overlap_tokens: int

    @property
    def digest(self) -> str:
        content = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(content).hexdigest()[:10]

    def settings(self) -> dict[str, str]:
        """The environment that makes this profile the configured one."""
        return {
            "DOCSTREAM_EMBED_MODEL": self.model,
            "DOCSTREAM_CHUNK_MAX_TOKENS": str(self.max_tokens),
            "DOCSTREAM_CHUNK_OVERLAP_TOKENS": str(self.overlap_tokens),
        }


@dataclass(frozen=True)
class Processing:
    """A profile and the chunker and embedder made from it."""

    profile: Profile
    chunker: Chunker
    embedder: Embedder


class LiveProfile:
    """The profile in use, with its chunker and embedder, and the models a
    replay replaced in this process. Satisfies `core.types.CurrentProfile`."""

    def __init__(self, configured: Processing) -> None:
        self.configured = configured.profile  # what the worker started with
        # One reference, replaced whole by `adopt`: a reader never sees the
        # chunker of one profile with the embedder of another.
        self._current = configured
        self._retired: set[str] = set()
        self._export()

    @property
    def current(self) -> Processing:
        return self._current

    @property
    def profile(self) -> Profile:
        return self._current.profile

    @property
    def chunker(self) -> Chunker:
        return self._current.chunker

    @property
    def embedder(self) -> Embedder:
        return self._current.embedder

    @property
    def digest(self) -> str:
        return self._current.profile.digest

    def retired(self, model: str) -> bool:
        """Whether vectors of `model` were replaced by a replay's (and so must
        not be written again)."""
        return model in self._retired

    def cut_by_current(self, digest: str) -> bool:
        """Whether a document state's profile digest is the one in use (a state
        written before digests were kept is of the configured profile)."""
        return (digest or self.configured.digest) == self.digest

    def adopt(self, processing: Processing) -> None:
        """Called by a replay at its switch, with no await in between: what the
        worker chunks, embeds and queries with from now on."""
        old, new = self.embedder.model_name, processing.embedder.model_name
        if new != old:
            self._retired.add(old)
        self._retired.discard(new)
        self._current = processing
        self._export()
        log.warning(
            "the worker now chunks and embeds with the replay's profile; "
            "configure it before the next restart, which would bring the old one back",
            extra={"profile": vars(processing.profile), "configure": processing.profile.settings()},
        )

    def _export(self) -> None:
        """The profile in use as a metric (status and alerts read it)."""
        PROFILE.clear()
        profile = self.profile
        configured = "true" if profile == self.configured else "false"
        PROFILE.labels(
            profile.model, str(profile.max_tokens), str(profile.overlap_tokens), configured
        ).set(1)
