"""The HTTP surface: REST API, dashboard, metrics and webhooks (FastAPI).

``create_app(settings)`` builds the app; ``start_api_in_background(settings, port)`` serves it on
a thread and returns a handle with ``.url``, ``.dashboard_url``, ``.token`` and ``.stop()``.
"""

from service.api.app import create_app
from service.api.server import ApiHandle, serve, start_api_in_background

__all__ = ["ApiHandle", "create_app", "serve", "start_api_in_background"]
