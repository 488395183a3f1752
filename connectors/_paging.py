"""A cursor over a vendor's ordered list of per-item containers (Appen units, MTurk HITs).

Vendors that keep each item's answers on the item itself, and list items in a stable order, are read
with a *frontier*: the index of the first item not yet complete. A traversal starts at the frontier
and reads items in order; items before it are complete and never read again, incomplete ones are
re-read on the next traversal (the (vendor, judgment id) unique key absorbs the re-reads).
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.mapping import decode_cursor, encode_cursor

__all__ = ["Frontier"]


@dataclass
class Frontier:
    frontier: int = 0  # every item before it is complete
    position: int = 0  # the next item to read in this traversal
    gap: bool = False  # an incomplete item was seen at or after the frontier in this traversal
    token: str | None = None  # the vendor's page token inside the item at ``position``

    @classmethod
    def load(cls, cursor: str | None) -> Frontier:
        state = decode_cursor(cursor)
        f = int(state.get("f", 0))
        return cls(frontier=f, position=int(state.get("p", f)), gap=bool(state.get("g")), token=state.get("t"))

    def dump(self) -> str:
        return encode_cursor({"f": self.frontier, "p": self.position, "g": self.gap, "t": self.token})

    def item_done(self, index: int, complete: bool) -> None:
        """Record that item ``index`` was read to its end (``complete``: it will never get more answers)."""
        if complete and not self.gap and index == self.frontier:
            self.frontier = index + 1
        elif not complete:
            self.gap = True
        self.position, self.token = index + 1, None

    def restart(self) -> None:
        """End of the list: the next traversal starts again at the frontier."""
        self.position, self.gap, self.token = self.frontier, False, None
