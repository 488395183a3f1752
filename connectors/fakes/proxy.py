"""A fault-injecting reverse proxy in front of a REAL vendor server (Label Studio in the tests).

It forwards every request to ``upstream`` unchanged and adds the ``/_fake`` fault knobs of
:mod:`connectors.fakes.common`: 429 with Retry-After, 503, 5xx after the write went through, and, on
``GET /api/tasks/`` pages, one re-delivered annotation (``duplicate``) or one broken one (``malformed``).
The server behind stays real; only the wire misbehaves.
"""

from __future__ import annotations

import json

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response

from connectors.fakes.common import FakeVendor, install_controls

__all__ = ["create_app"]

HOP = {"host", "content-length", "connection", "transfer-encoding", "content-encoding"}


def create_app(upstream: str, vendor: FakeVendor) -> FastAPI:
    app = FastAPI(title=f"fault proxy -> {upstream}")
    install_controls(app, vendor)
    client = httpx.AsyncClient(base_url=upstream, timeout=60.0)

    def tamper(body: bytes) -> bytes:
        try:
            data = json.loads(body)
        except ValueError:
            return body
        tasks = [t for t in data.get("tasks", []) if t.get("annotations")] if isinstance(data, dict) else []
        if not tasks:
            return body
        if vendor.take("duplicate"):
            tasks[0]["annotations"].append(dict(tasks[0]["annotations"][0]))
            vendor.counters["duplicates_sent"] += 1
        if vendor.take("malformed"):
            broken = dict(tasks[-1]["annotations"][0], id=-1, unique_id="broken-annotation", result="not a list")
            tasks[-1]["annotations"].append(broken)
            vendor.counters["malformed_sent"] += 1
        return json.dumps(data).encode()

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def forward(path: str, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        upstream_response = await client.request(request.method, "/" + path, params=request.query_params,
                                                 headers=headers, content=await request.body())
        body = upstream_response.content
        if request.method == "GET" and path.rstrip("/") == "api/tasks" and upstream_response.status_code == 200:
            body = tamper(body)
        out_headers = {k: v for k, v in upstream_response.headers.items() if k.lower() not in HOP}
        return Response(content=body, status_code=upstream_response.status_code, headers=out_headers)

    app.state.vendor = vendor
    app.state.tick = None
    return app
