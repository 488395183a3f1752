r"""Ranked pairs (Tideman): a Condorcet-consistent consensus ranking per task.

Method: for every pair of items count the rankings that put :math:`a` above :math:`b`,
:math:`N(a,b)`. Take the pairs with :math:`N(a,b) > N(b,a)` in order of decreasing margin
:math:`N(a,b) - N(b,a)` (then decreasing :math:`N(a,b)`, then item order) and lock each one in unless it
would close a cycle with those already locked; the locked graph is acyclic and its topological order
(sources first, ties to the item that sorts first) is the consensus. A Condorcet winner, if one exists, is
always first. ``scores_`` are the items' Copeland-style rank scores :math:`(m - 1 - \text{position})`
in the consensus, so higher is better.

Preconditions: the ranking contract (``service.aggregation.rankings``). Items never compared with each
other are simply not locked against each other. Cost: one pass over the stated pairs, then a small graph
per task (O(m^4) worst case for m items; m is a handful in practice).

Citation: T. N. Tideman, "Independence of clones as a criterion for voting rules", Social Choice and
Welfare 4, 1987, 185–206.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .rankings import RankingAggregator, Rankings

__all__ = ["RankedPairs"]


def _reaches(adj: dict[int, set[int]], src: int, dst: int) -> bool:
    stack, seen = [src], {src}
    while stack:
        u = stack.pop()
        if u == dst:
            return True
        for v in adj.get(u, ()):
            if v not in seen:
                seen.add(v)
                stack.append(v)
    return False


@dataclass(kw_only=True)
class RankedPairs(RankingAggregator):
    """Tideman's ranked pairs (see module docstring)."""

    def _scores(self, r: Rankings) -> np.ndarray:
        _, a, b = r.pairs()
        n = r.n_items
        counts = pd.Series(1, index=pd.MultiIndex.from_arrays([a, b])).groupby(level=[0, 1]).sum()
        ca, cb = counts.index.get_level_values(0).to_numpy(), counts.index.get_level_values(1).to_numpy()
        wins = dict(zip(zip(ca.tolist(), cb.tolist()), counts.to_numpy().tolist()))
        rev = np.array([wins.get((y, x), 0) for x, y in zip(ca.tolist(), cb.tolist())])
        margin = counts.to_numpy() - rev
        keep = margin > 0
        frame = pd.DataFrame({"task": r.item_task[ca[keep]], "a": ca[keep], "b": cb[keep],
                              "margin": margin[keep], "n": counts.to_numpy()[keep]})
        frame = frame.sort_values(["task", "margin", "n", "a", "b"], ascending=[True, False, False, True, True])
        locked: dict[int, dict[int, set[int]]] = {}
        for task, x, y in zip(frame["task"].tolist(), frame["a"].tolist(), frame["b"].tolist()):
            adj = locked.setdefault(task, {})
            if not _reaches(adj, y, x):
                adj.setdefault(x, set()).add(y)
        score = np.zeros(n)
        members = pd.Series(np.arange(n)).groupby(r.item_task).agg(list)
        for task, items in members.items():
            adj = locked.get(int(task), {})
            indeg = {i: 0 for i in items}
            for u in adj:
                for v in adj[u]:
                    indeg[v] += 1
            order: list[int] = []
            ready = sorted(i for i in items if indeg[i] == 0)
            while ready:
                u = ready.pop(0)
                order.append(u)
                for v in sorted(adj.get(u, ())):
                    indeg[v] -= 1
                    if indeg[v] == 0:
                        ready.append(v)
                ready.sort()
            m = len(order)
            for p, i in enumerate(order):
                score[i] = m - 1 - p
        return score
