"""Small helpers the vendor modules share: times, opaque cursors, item text, malformed records."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from typing import Any

from connectors.base import JudgmentKind, MalformedRecord, TaskSpec, response_letter

__all__ = ["dig", "as_utc", "decode_cursor", "encode_cursor", "iso_z", "malformed", "option_labels", "parse_time",
           "render_task"]


def dig(value: Any, *keys: str) -> Any:
    """``value[k1][k2]...`` through dicts only; None as soon as a level is missing or not an object.

    Vendor payloads are untrusted: ``(row.get("data") or {}).get(...)`` crashes when ``data`` is a
    string, a number or ``true``; this never does.
    """
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def parse_time(value: Any) -> datetime:
    """ISO 8601 (``Z`` or offset), or unix seconds/milliseconds -> aware UTC; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, int | float):
        seconds = value / 1000.0 if value > 1e11 else float(value)
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    if not isinstance(value, str) or not value:
        raise ValueError(f"not a time: {value!r}")
    text = value.strip().replace(" ", "T", 1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    return as_utc(parsed)


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def iso_z(value: datetime, *, minus_s: float = 0.0) -> str:
    """``%Y-%m-%dT%H:%M:%S.%fZ`` (the one form Label Studio's filters accept, and fine elsewhere)."""
    return (as_utc(value) - timedelta(seconds=minus_s)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_cursor(state: dict[str, Any]) -> str:
    """Opaque cursor text (fits ``batch.fetch_cursor``, 500 characters)."""
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str | None) -> dict[str, Any]:
    if not cursor:
        return {}
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def malformed(raw: Any, reason: str) -> MalformedRecord:
    text = raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True, default=str)
    return MalformedRecord(raw=text, reason=reason)


def render_task(task: TaskSpec) -> str:
    """One item as plain text for vendors that show a single text attachment."""
    parts = [f"Prompt:\n{task.prompt}"]
    parts += [f"Response {response_letter(i)}:\n{text}" for i, text in enumerate(task.responses)]
    return "\n\n".join(parts)


def option_labels(kind: JudgmentKind, scale: int = 5) -> dict[str, str]:
    """Answer options shown to raters -> canonical label, for single-choice kinds."""
    if kind is JudgmentKind.pairwise:
        return {"Response A": "A", "Response B": "B", "Tie": "tie"}
    if kind is JudgmentKind.rating:
        return {str(i): str(i) for i in range(1, scale + 1)}
    if kind is JudgmentKind.binary:
        return {"Good": "up", "Bad": "down"}
    raise ValueError(f"{kind.value} has no single-choice options")
