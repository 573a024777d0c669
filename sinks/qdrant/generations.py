"""Generations of the vector index in Qdrant: one collection per generation
(`<alias>-g<n>`) behind the alias that queries and the live sink use.

Switching is one `update_collection_aliases` call (delete + create in one
request), which Qdrant applies atomically: a query sees the old collection or
the new one, never neither."""

from __future__ import annotations

from qdrant_client import models

from core.types import GenerationState
from sinks.qdrant.names import GenerationNames
from sinks.qdrant.server import QdrantVectorStore


class QdrantGenerations:
    def __init__(self, store: QdrantVectorStore) -> None:
        self.store = store
        self.alias = store.alias
        self.names = GenerationNames(self.alias)

    async def state(self) -> GenerationState:
        active = await self.store.alias_target() or self.alias
        return GenerationState(active, self.names.building(await self._generations(), active))

    async def begin(self) -> str:
        """The collection a rebuild fills: the one left unfinished, or a new one."""
        state = await self.state()
        if state.building is not None:
            return state.building
        name = self.names.next(await self._generations())
        await self.store.create_collection(name)
        return name

    async def activate(self, gen: str) -> str:
        previous = await self.store.alias_target()
        client = self.store.client
        if previous is None and await self.store._call(client.collection_exists, self.alias):
            # A collection from before generations holds the alias's name; it
            # has to go before the alias can exist (the one non-atomic switch).
            await self.store._call(client.delete_collection, self.alias)
            previous = self.alias
        changes: list[models.AliasOperations] = []
        if previous is not None and previous != self.alias:
            changes.append(
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=self.alias))
            )
        changes.append(
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=gen, alias_name=self.alias)
            )
        )
        await self.store._call(client.update_collection_aliases, changes)
        return previous or self.alias

    async def abandon(self) -> None:
        building = (await self.state()).building
        if building is not None:
            await self.drop(building)

    async def drop(self, gen: str) -> None:
        if gen == (await self.state()).active:
            raise ValueError(f"refusing to drop {gen}: it is the active generation")
        if await self.store._call(self.store.client.collection_exists, gen):
            await self.store._call(self.store.client.delete_collection, gen)

    async def size(self, gen: str) -> dict[str, int]:
        if not await self.store._call(self.store.client.collection_exists, gen):
            return {"chunks": 0}
        result = await self.store._call(self.store.client.count, gen, exact=True)
        return {"chunks": int(result.count)}

    async def _generations(self) -> list[str]:
        response = await self.store._call(self.store.client.get_collections)
        return self.names.of(c.name for c in response.collections)
