"""Use cases: the one place business rules live."""
