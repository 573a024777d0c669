"""Generations of the vector index, for both Qdrant stores: one collection (on
a server) or shard folder (Qdrant Edge) per generation, `<alias>-g<n>`, behind
the name that queries and the live sink use.

The stores do the work with their own public methods (`GenerationStore`); this
is the `core.types.Generations` face a rebuild talks to. Switching is atomic
in both: one `update_collection_aliases` call on a server (a query sees the old
collection or the new one, never neither), an atomic rename of the
`<alias>.active` file plus the shard swap on Edge's own thread."""

from __future__ import annotations

from typing import Any, Protocol

from core.types import GenerationState
from sinks.qdrant.names import GenerationNames


class GenerationStore(Protocol):
    """What a Qdrant store offers its generations (`server.py`, `edge.py`)."""

    alias: str

    async def active_generation(self) -> str: ...

    async def generation_names(self) -> list[str]: ...

    async def create_collection(self, name: str, deferred_index: bool = False) -> None: ...

    async def build_index(self, name: str) -> None: ...

    async def switch_to(self, gen: str) -> str: ...

    async def drop_collection(self, name: str) -> None: ...

    async def points_in(self, name: str) -> int: ...

    async def record_profile(self, name: str, profile: dict[str, Any]) -> None: ...

    async def profile_of(self, name: str) -> dict[str, Any] | None: ...


class QdrantGenerations:
    def __init__(self, store: GenerationStore) -> None:
        self.store = store
        self.alias = store.alias
        self.names = GenerationNames(self.alias)

    async def state(self) -> GenerationState:
        active = await self.store.active_generation()
        return GenerationState(active, self.names.building(await self._generations(), active))

    async def begin(self) -> str:
        """The collection a rebuild fills: the one left unfinished, or a new one."""
        state = await self.state()
        if state.building is not None:
            return state.building
        name = self.names.next(await self._generations())
        await self.store.create_collection(name, deferred_index=True)
        return name

    async def activate(self, gen: str) -> str:
        """Build `gen`'s vector index (deferred while it filled), then make it
        the live generation; returns the previous one."""
        await self.store.build_index(gen)
        return await self.store.switch_to(gen)

    async def abandon(self) -> None:
        building = (await self.state()).building
        if building is not None:
            await self.drop(building)

    async def drop(self, gen: str) -> None:
        if gen == (await self.state()).active:
            raise ValueError(f"refusing to drop {gen}: it is the active generation")
        await self.store.drop_collection(gen)

    async def size(self, gen: str) -> dict[str, int]:
        return {"chunks": await self.store.points_in(gen)}

    async def record_profile(self, gen: str, profile: dict[str, Any]) -> None:
        await self.store.record_profile(gen, profile)

    async def profile_of(self, gen: str) -> dict[str, Any] | None:
        return await self.store.profile_of(gen)

    async def _generations(self) -> list[str]:
        return self.names.of(await self.store.generation_names())
