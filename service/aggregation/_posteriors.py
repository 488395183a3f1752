"""A growable table of task posteriors for incremental fits (private).

``partial_fit`` must cost O(new rows), not O(tasks): pandas' ``union`` / ``reindex`` / ``get_indexer`` on a
100k-task index (arrow strings converted to objects and re-hashed on every call) were 0.13 s of a 0.15 s
update at 1M labels, whatever the size of the update. Here a plain dict maps task names to rows of a numpy
array that grows by doubling, so looking up and appending tasks is O(1) each; the pandas view
(``frame``) is built only when someone reads ``probas_`` / ``labels_``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["TaskPosteriors"]


class TaskPosteriors:
    """Rows of ``(n_tasks, n_classes)`` posteriors keyed by task name, in insertion order."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._names: list[object] = list(frame.index)
        self._rows: dict[object, int] = {name: i for i, name in enumerate(self._names)}
        self._q = np.array(frame.to_numpy(float), copy=True)
        self.n = len(self._names)

    @property
    def values(self) -> np.ndarray:
        return self._q[:self.n]

    def positions(self, names: Sequence[object]) -> np.ndarray:
        """Row of each name, -1 where unknown."""
        get = self._rows.get
        return np.fromiter((get(name, -1) for name in names), dtype=np.int64, count=len(names))

    def append(self, names: Sequence[object]) -> np.ndarray:
        """New zero rows for ``names`` (not yet known); returns their positions."""
        start, end = self.n, self.n + len(names)
        if end > len(self._q):
            grown = np.zeros((max(end, 2 * len(self._q), 16), self._q.shape[1]))
            grown[:self.n] = self._q[:self.n]
            self._q = grown
        for offset, name in enumerate(names):
            self._rows[name] = start + offset
        self._names.extend(names)
        self.n = end
        return np.arange(start, end)

    def assign(self, positions: np.ndarray, q: np.ndarray) -> None:
        self._q[positions] = q

    def frame(self, classes: pd.Index) -> pd.DataFrame:
        return pd.DataFrame(self.values.copy(), index=pd.Index(self._names, name="task"), columns=classes)
