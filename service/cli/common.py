"""What every CLI command shares: the configured database (schema brought up to date once per
process, so a user who skipped ``crowdbridge db-upgrade`` is not met by a missing table) and JSON output."""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from typing import Any

from service.settings import get_settings

__all__ = ["database_url", "print_json"]


@lru_cache(maxsize=4)
def _migrated(url: str) -> str:
    from service.storage.db import migrate

    migrate(url)
    return url


def database_url() -> str:
    return _migrated(get_settings().resolved_database_url)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
