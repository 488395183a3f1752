"""Read item uploads from JSONL, CSV or Parquet into plain records (``campaign create --items``).

JSONL: one object per line, ``{"id", "prompt", "responses": [str | {"model_id", "text"}], "gold"?, "metadata"?}``.
CSV / Parquet: columns ``id, prompt, response_1 .. response_k`` (optionally ``model_1 .. model_k``, ``gold``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from service.errors import InvalidInput

__all__ = ["read_item_records"]


def _from_frame(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    response_cols = sorted((c for c in frame.columns if c.startswith("response_")), key=lambda c: int(c[9:]))
    if "prompt" not in frame.columns or len(response_cols) < 1:
        raise InvalidInput(f"columns must include prompt and response_1..response_k; found {list(frame.columns)}")
    for row in frame.to_dict(orient="records"):
        responses = []
        for col in response_cols:
            text = row.get(col)
            if isinstance(text, str) and text:
                model = row.get(f"model_{col[9:]}")
                responses.append({"model_id": model if isinstance(model, str) else None, "text": text})
        gold = row.get("gold")
        yield {"id": row.get("id"), "prompt": row["prompt"], "responses": responses,
               "gold": gold if isinstance(gold, str) and gold else None}


def read_item_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        raise InvalidInput(f"{path} does not exist")
    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    if suffix in (".jsonl", ".jsonl.gz", ".ndjson"):
        import gzip

        opener = gzip.open if path.suffix == ".gz" else open
        records = []
        with opener(path, "rt", encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise InvalidInput(f"{path}:{n}: not valid JSON ({exc.msg})") from exc
        return records
    if suffix == ".csv":
        return list(_from_frame(pd.read_csv(path, dtype=str, keep_default_na=False)))
    if suffix == ".parquet":
        return list(_from_frame(pd.read_parquet(path)))
    raise InvalidInput(f"{path}: unsupported format {suffix!r}; use .jsonl, .csv or .parquet")
