"""A small Python client for the crowdbridge API: reads come back as pandas DataFrames.

    >>> from service.client import Client
    >>> cb = Client("http://127.0.0.1:8000", token="cb_...")
    >>> cb.judgments("my-campaign", vendor="simulated")        # every page, one DataFrame
    >>> cb.consensus("my-campaign", method="ds")
    >>> cb.analytics(campaign="my-campaign")                    # one row per vendor

Errors come back as :class:`ApiError` with the API's stable ``code`` and its ``status``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

__all__ = ["ApiError", "Client"]

_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class Client:
    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {token}"})

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                raise ApiError(response.status_code, error["code"], error["message"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(response.status_code, f"http_{response.status_code}", response.text[:500]) from None
        return response

    def _get(self, path: str, **params: Any) -> Any:
        return self._request("GET", path, params={k: v for k, v in params.items() if v is not None}).json()

    def _pages(self, path: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self._get(path, **params, cursor=cursor)
            yield from page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return

    # campaigns
    def campaigns(self) -> pd.DataFrame:
        return pd.DataFrame(self._get("/api/v1/campaigns"))

    def campaign(self, ref: str) -> dict[str, Any]:
        return self._get(f"/api/v1/campaigns/{ref}")  # type: ignore[no-any-return]

    def create_campaign(self, name: str, **spec: Any) -> dict[str, Any]:
        return self._request("POST", "/api/v1/campaigns", json={"name": name, **spec}).json()  # type: ignore[no-any-return]

    def upload_items(self, ref: str, path: Path | str) -> dict[str, Any]:
        path = Path(path)
        fmt = _FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise ValueError(f"{path}: use .jsonl, .csv or .parquet")
        with path.open("rb") as fh:
            return self._request("POST", f"/api/v1/campaigns/{ref}/items", params={"format": fmt},  # type: ignore[no-any-return]
                                 content=iter(lambda: fh.read(1 << 16), b"")).json()

    def start(self, ref: str) -> dict[str, Any]:
        return self._request("POST", f"/api/v1/campaigns/{ref}/start").json()  # type: ignore[no-any-return]

    # results
    def judgments(self, ref: str, *, page_size: int = 1000, **filters: Any) -> pd.DataFrame:
        rows = list(self._pages(f"/api/v1/campaigns/{ref}/judgments", {"limit": page_size, **filters}))
        frame = pd.DataFrame(rows)
        for column in ("submitted_at", "received_at", "started_at"):
            if column in frame:
                frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        return frame

    def consensus(self, ref: str, *, method: str | None = None, contested: bool | None = None) -> pd.DataFrame:
        params = {"limit": 1000, "method": method, "contested": contested}
        return pd.DataFrame(list(self._pages(f"/api/v1/campaigns/{ref}/consensus",
                                             {k: v for k, v in params.items() if v is not None})))

    def agreement(self, ref: str, *, scope: str | None = None) -> pd.DataFrame:
        return pd.DataFrame(self._get(f"/api/v1/campaigns/{ref}/agreement", scope=scope))

    def analytics(self, *, campaign: str | None = None, vendor: str | None = None, since: str | None = None,
                  until: str | None = None) -> pd.DataFrame:
        rows = self._get("/api/v1/analytics/vendors", campaign=campaign, vendor=vendor, since=since, until=until)
        return pd.DataFrame(rows)

    def models(self, *, family: str | None = None) -> pd.DataFrame:
        return pd.DataFrame(self._get("/api/v1/models", family=family))

    def model_card(self, model_id: str) -> dict[str, Any]:
        return self._get(f"/api/v1/models/{model_id}/card")  # type: ignore[no-any-return]
