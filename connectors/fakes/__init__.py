"""Faithful fakes of vendor HTTP APIs (FastAPI apps), for tests and local runs; see ``common``.

Each module's ``create_app(vendor=None, ...)`` returns a FastAPI app with ``app.state.vendor`` (the
shared :class:`~connectors.fakes.common.FakeVendor`) and ``app.state.tick`` (sends due callbacks);
serve it with :func:`~connectors.fakes.common.serve_in_thread`.
"""

from connectors.fakes.common import Crowd, FakeVendor, Faults, RunningFake, serve_in_thread

__all__ = ["Crowd", "FakeVendor", "Faults", "RunningFake", "serve_in_thread"]
