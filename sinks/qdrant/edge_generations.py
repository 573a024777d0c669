"""Generations of the Qdrant Edge store: one shard folder per generation
under `QDRANT_PATH/edge`, and a `<alias>.active` file naming the live one
(see `sinks/qdrant/edge.py`). Switching rewrites that file by an atomic rename
and swaps the open shard in the same step, on the store's own thread."""

from __future__ import annotations

import shutil

import qdrant_edge as edge

from core.types import GenerationState
from sinks.qdrant.edge import EdgeVectorStore
from sinks.qdrant.names import GenerationNames


class EdgeGenerations:
    """`core.types.Generations` over shard folders (see the module docstring)."""

    def __init__(self, store: EdgeVectorStore) -> None:
        self.store = store
        self.alias = store.alias
        self.names = GenerationNames(self.alias)

    async def state(self) -> GenerationState:
        return await self.store._call(self._state)

    def _state(self) -> GenerationState:
        active = self.store._shards.active
        return GenerationState(active, self.names.building(self._generations(), active))

    async def begin(self) -> str:
        """The shard a rebuild fills: the one left unfinished, or a new one."""
        return await self.store._call(self._begin)

    def _begin(self) -> str:
        building = self._state().building
        if building is not None:
            return building
        name = self.names.next(self._generations())
        self.store._create(name)
        return name

    async def activate(self, gen: str) -> str:
        def switch() -> str:
            previous = self.store._shards.active
            self.store._open(gen).optimize()  # index it before queries land on it
            self.store._point_to(gen)
            return previous

        return await self.store._call(switch)

    async def abandon(self) -> None:
        state = await self.state()
        if state.building:
            await self.drop(state.building)

    async def drop(self, gen: str) -> None:
        def remove() -> None:
            shards = self.store._shards
            if gen == shards.active:
                raise ValueError(f"refusing to drop {gen}: it is the active generation")
            if gen in shards.open:
                shards.open.pop(gen).close()
            # A later generation may take the name again: forget what this one had.
            shards.pending.pop(gen, None)
            shards.indexed.pop(gen, None)
            shutil.rmtree(shards.root / gen, ignore_errors=True)

        await self.store._call(remove)

    async def size(self, gen: str) -> dict[str, int]:
        def count() -> int:
            if gen not in self._generations():
                return 0
            return self.store._open(gen).count(edge.CountRequest())

        return {"chunks": await self.store._call(count)}

    def _generations(self) -> list[str]:
        root = self.store._shards.root
        names = [p.name for p in root.iterdir() if p.is_dir()] if root.exists() else []
        return self.names.of(names)
