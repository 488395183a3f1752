"""Judgments from a vendor's export file (CSV, JSONL or Parquet): "the scores are in a spreadsheet".

No wire: ``submit_batch`` writes the batch's items to ``<root>/<idempotency key>/items.csv`` (hand it to the
raters, or upload it to the vendor) and is idempotent (an existing directory is a replay). Drop the
vendor's export(s) as ``<root>/<key>/judgments*.csv|jsonl|parquet``; ``poll`` reports the batch completed
once one is there. Rows are read in file-name order, ``page_size`` at a time, into the same
``ResultPage`` the HTTP connectors return, so they take the same ingestion path (``store_page``): unknown
items and invalid labels are quarantined there, unreadable rows here, re-imports are ignored by the
unique key.

Columns (aliases in brackets): ``item_id``, ``rater_id`` [worker_id, annotator], ``label`` [answer, choice],
``submitted_at`` [created_at, completed_at]; optional ``judgment_id`` [id] (else a hash of the row's
item, rater, label and time), ``started_at``, ``cost``. ``cancel`` writes a ``CANCELLED`` marker.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import httpx

from connectors.base import (
    BatchRequest,
    BatchState,
    Capabilities,
    MalformedRecord,
    ResultPage,
    VendorBatchRef,
    VendorBatchStatus,
    VendorJudgment,
    response_letter,
)
from connectors.errors import VendorRejected
from connectors.mapping import decode_cursor, encode_cursor, malformed, parse_time

__all__ = ["FileConnector", "read_rows"]

ALIASES = {"item_id": ("item_id", "task_id", "item"), "rater_id": ("rater_id", "worker_id", "annotator", "rater"),
           "label": ("label", "answer", "choice"), "submitted_at": ("submitted_at", "created_at", "completed_at"),
           "judgment_id": ("judgment_id", "id"), "started_at": ("started_at",), "cost": ("cost", "cost_usd")}


def read_rows(path: Path) -> list[Any]:
    """One export file as a list of rows (dicts; a JSONL line that is not an object stays as its text)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    if suffix in (".jsonl", ".ndjson"):
        rows: list[Any] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    rows.append(line)
        return rows
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    raise VendorRejected(f"file: {path.name} is not .csv, .jsonl or .parquet", vendor="file")


def _pick(row: Mapping[str, Any], name: str) -> Any:
    for alias in ALIASES[name]:
        value = row.get(alias)
        if value is not None and not (isinstance(value, float) and math.isnan(value)) and value != "":
            return value
    return None


class FileConnector:
    name: ClassVar[str] = "file"
    capabilities: ClassVar[Capabilities] = Capabilities(
        per_rater_identity=True, webhooks=False, idempotent_submit=True, cancel=True, cost=True)

    def __init__(self, root: Path, *, page_size: int = 500) -> None:
        self._root = root
        self._page_size = page_size

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *,
                     transport: httpx.BaseTransport | None = None) -> FileConnector:
        root = options.get("root") or options.get("base_url") or Path.home() / ".crowdbridge" / "file-vendor"
        return cls(Path(str(root).removeprefix("file://")).expanduser(), page_size=int(options.get("page_size", 500)))

    def _dir(self, ref: VendorBatchRef) -> Path:
        return self._root / ref.vendor_batch_id

    def _exports(self, ref: VendorBatchRef) -> list[Path]:
        return sorted(p for p in self._dir(ref).glob("judgments*") if p.suffix.lower() in
                      (".csv", ".jsonl", ".ndjson", ".parquet"))

    def submit_batch(self, req: BatchRequest) -> VendorBatchRef:
        folder = self._root / req.idempotency_key
        created = not (folder / "items.csv").exists()
        if created:
            folder.mkdir(parents=True, exist_ok=True)
            n = max(len(t.responses) for t in req.tasks)
            tmp = folder / "items.csv.tmp"
            with tmp.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(["item_id", "prompt", *(f"response_{response_letter(i).lower()}" for i in range(n)),
                                 "raters_wanted"])
                for t in req.tasks:
                    writer.writerow([t.item_id, t.prompt, *t.responses, *([""] * (n - len(t.responses))),
                                     req.raters_per_item])
            tmp.replace(folder / "items.csv")  # atomic: a crash never leaves half a file that looks done
        return VendorBatchRef(vendor=self.name, vendor_batch_id=req.idempotency_key, created=created)

    def poll(self, ref: VendorBatchRef) -> VendorBatchStatus:
        folder = self._dir(ref)
        with (folder / "items.csv").open(encoding="utf-8") as fh:
            total = max(0, sum(1 for _ in fh) - 1)
        if self._exports(ref):
            state = BatchState.completed
        elif (folder / "CANCELLED").exists():
            state = BatchState.cancelled
        else:
            state = BatchState.pending
        return VendorBatchStatus(state=state, tasks_total=total, judgments_expected=0, judgments_done=0)

    def fetch_judgments(self, ref: VendorBatchRef, cursor: str | None) -> ResultPage:
        offset = int(decode_cursor(cursor).get("row", 0))
        rows: list[tuple[str, Any]] = [(p.name, r) for p in self._exports(ref) for r in read_rows(p)]
        page = rows[offset: offset + self._page_size]
        judgments: list[VendorJudgment] = []
        bad: list[MalformedRecord] = []
        for source, row in page:
            parsed = self.parse_row(source, row)
            (judgments if isinstance(parsed, VendorJudgment) else bad).append(parsed)  # type: ignore[arg-type]
        more = offset + len(page) < len(rows)
        return ResultPage(judgments=tuple(judgments), malformed=tuple(bad),
                          cursor=encode_cursor({"row": offset + len(page)}), has_more=more)

    @staticmethod
    def parse_row(source: str, row: Any) -> VendorJudgment | MalformedRecord:
        if not isinstance(row, dict):
            return malformed(row, f"{source}: row is not a record")
        raw = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
        raw["_source"] = source
        item, rater, label, when = (_pick(row, k) for k in ("item_id", "rater_id", "label", "submitted_at"))
        missing = [k for k, v in (("item_id", item), ("rater_id", rater), ("label", label), ("submitted_at", when))
                   if v is None]
        if missing:
            return malformed(raw, f"{source}: missing {', '.join(missing)}")
        try:
            submitted = parse_time(when.isoformat() if hasattr(when, "isoformat") else when)
            started_raw = _pick(row, "started_at")
            started = parse_time(started_raw.isoformat() if hasattr(started_raw, "isoformat") else started_raw) \
                if started_raw is not None else None
        except ValueError:
            return malformed(raw, f"{source}: submitted_at/started_at {when!r} is not a time")
        cost_raw = _pick(row, "cost")
        try:
            cost = float(cost_raw) if cost_raw is not None else None
        except (TypeError, ValueError):
            return malformed(raw, f"{source}: cost {cost_raw!r} is not a number")
        label_text = str(int(label)) if isinstance(label, float) and label.is_integer() else str(label).strip()
        jid = _pick(row, "judgment_id") or hashlib.sha256(
            f"{item}|{rater}|{label_text}|{submitted.isoformat()}".encode()).hexdigest()[:32]
        return VendorJudgment(vendor_judgment_id=f"file:{jid}", item_id=str(item), rater_id=f"file:{rater}",
                              label=label_text, submitted_at=submitted, started_at=started, cost=cost, raw=raw)

    def cancel(self, ref: VendorBatchRef) -> None:
        if not self._exports(ref):
            (self._dir(ref) / "CANCELLED").touch()
