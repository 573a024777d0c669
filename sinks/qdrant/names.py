"""How the collections or shard folders of an index's generations are named
(`<alias>-g<n>`), for both Qdrant stores: which names are generations, which one
is building beside the active one, and the next name to take."""

from __future__ import annotations

import re
from collections.abc import Iterable


class GenerationNames:
    def __init__(self, alias: str) -> None:
        self.alias = alias
        self._pattern = re.compile(rf"^{re.escape(alias)}-g(\d+)$")

    def of(self, names: Iterable[str]) -> list[str]:
        """The names among `names` that are generations of this alias, sorted."""
        return sorted(n for n in names if self._pattern.match(n))

    def building(self, generations: list[str], active: str) -> str | None:
        """The newest generation that is not the active one: a rebuild's."""
        others = [name for name in generations if name != active]
        return max(others, key=self.number) if others else None

    def next(self, generations: list[str]) -> str:
        return f"{self.alias}-g{max(map(self.number, generations), default=0) + 1}"

    def number(self, name: str) -> int:
        found = self._pattern.match(name)
        return int(found.group(1)) if found else -1
