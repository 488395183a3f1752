"""The domain tests' fixtures (a simulated vendor over HTTP, SQLite settings), shared with the CLI tests."""

from tests.domain.conftest import settings, vendor  # noqa: F401
