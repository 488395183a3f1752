"""Serve the API: in the foreground (``crowdbridge api``) or on a thread (the demo, tests)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import uvicorn

from service.settings import Settings

__all__ = ["ApiHandle", "serve", "start_api_in_background"]


@dataclass
class ApiHandle:
    url: str
    server: uvicorn.Server
    thread: threading.Thread
    token: str | None = None  # an admin token created for this run, when asked for

    @property
    def dashboard_url(self) -> str:
        return f"{self.url}/dashboard"

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def _config(settings: Settings, host: str, port: int) -> uvicorn.Config:
    from service.api.app import create_app

    return uvicorn.Config(create_app(settings), host=host, port=port, log_level="warning", access_log=False,
                          lifespan="off")


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    from service.storage.db import migrate

    migrate(settings.resolved_database_url)
    uvicorn.Server(_config(settings, host, port)).run()


def start_api_in_background(settings: Settings, port: int = 0, *, host: str = "127.0.0.1",
                            admin_token: str | None = None, timeout: float = 20.0) -> ApiHandle:
    """Start the API on a daemon thread and wait until it answers. ``port=0`` picks a free port.

    ``admin_token="demo"`` also creates an admin token of that name and puts it on the handle
    (the demo prints it with the dashboard address). Call ``.stop()`` when done.
    """
    from service.processes import free_port, wait_http
    from service.storage.db import migrate, session_scope

    migrate(settings.resolved_database_url)
    port = port or free_port()
    server = uvicorn.Server(_config(settings, host, port))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # not the main thread
    thread = threading.Thread(target=server.run, name=f"crowdbridge-api-{port}", daemon=True)
    thread.start()
    url = f"http://{host}:{port}"
    started = time.monotonic()
    while not server.started:
        if not thread.is_alive() or time.monotonic() - started > timeout:
            server.should_exit = True
            raise RuntimeError(f"the API did not start on {url}")
        time.sleep(0.05)
    wait_http(f"{url}/healthz", timeout=timeout)
    handle = ApiHandle(url=url, server=server, thread=thread)
    if admin_token:
        from service.domain.tokens import create_token

        with session_scope(settings.resolved_database_url) as session:
            handle.token = create_token(session, name=admin_token, scope="admin").plain
            session.commit()
    return handle
