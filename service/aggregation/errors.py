"""The one error this package raises for bad input.

``AggregationInputError`` is a ``ValueError`` so callers that only know the standard library still catch
it; its message always says what to fix. It carries ``field`` (the column or argument at fault) when one
is known. The package imports nothing from the rest of the service: the domain layer maps this class to
its own error tree (see ``service/errors.py``).
"""

from __future__ import annotations

__all__ = ["AggregationInputError"]


class AggregationInputError(ValueError):
    """Input that no aggregation method can use: empty frame, missing columns, one rater, labels outside a
    declared set, a disconnected comparison graph, a gold label the model cannot represent, ..."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
