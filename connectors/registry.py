"""Which connector class serves which vendor name.

Three ways in, one lookup (fsspec's pattern):

1. built-ins: a table of dotted paths below, imported lazily on first use;
2. third-party packages: the ``crowdbridge.connectors`` entry-point group, e.g.
   ``[project.entry-points."crowdbridge.connectors"] acme = "acme_conn:AcmeConnector"``;
3. ``register(name, cls)`` at run time (tests, notebooks).

Discovery runs on the first lookup, never at import time. A name is never overwritten
silently: ``register`` raises :class:`DuplicateVendor` unless ``clobber=True``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points
from types import MappingProxyType

from connectors.base import Connector
from connectors.errors import DuplicateVendor, UnknownVendor

__all__ = ["BUILTINS", "available", "get_connector_class", "register"]

ENTRY_POINT_GROUP = "crowdbridge.connectors"

BUILTINS: Mapping[str, str] = MappingProxyType(
    {
        "simulated": "connectors.simulated.client:SimulatedConnector",
        "label_studio": "connectors.label_studio.client:LabelStudioConnector",
        "scale": "connectors.scale:ScaleConnector",
        "surge": "connectors.surge:SurgeConnector",
        "toloka": "connectors.toloka:TolokaConnector",
        "appen": "connectors.appen:AppenConnector",
        "prolific": "connectors.prolific:ProlificConnector",
        "argilla": "connectors.argilla:ArgillaConnector",
        "mturk": "connectors.mturk:MTurkConnector",
        "file": "connectors.file:FileConnector",
        "model": "connectors.model:ModelConnector",
    }
)

_registered: dict[str, type[Connector]] = {}
_entry_points: dict[str, str] | None = None


def _discovered() -> dict[str, str]:
    global _entry_points
    if _entry_points is None:
        _entry_points = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return _entry_points


def _load(dotted: str, name: str) -> type[Connector]:
    module_name, _, attr = dotted.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownVendor(
            f"connector {name!r} could not be imported ({exc}); install its extra: pip install 'crowdbridge[{name}]'",
            vendor=name,
        ) from exc
    return getattr(module, attr)


def register(name: str, cls: type[Connector], *, clobber: bool = False) -> None:
    """Register ``cls`` under ``name``. Refuses to replace an existing name unless ``clobber``."""
    if not clobber and (name in _registered or name in BUILTINS or name in _discovered()):
        raise DuplicateVendor(f"a connector named {name!r} is already registered", vendor=name)
    _registered[name] = cls


def available() -> list[str]:
    """Every vendor name that a lookup would find, sorted."""
    return sorted({*BUILTINS, *_discovered(), *_registered})


def get_connector_class(name: str) -> type[Connector]:
    if name in _registered:
        return _registered[name]
    if name in BUILTINS:
        return _load(BUILTINS[name], name)
    if name in _discovered():
        return _load(_discovered()[name], name)
    raise UnknownVendor(f"no connector named {name!r}; known: {', '.join(available())}", vendor=name)
