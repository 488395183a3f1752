"""RLAIF: a local model as a rater. Its judgments take the same path as a human vendor's.

A *scorer* gives each response of an item a scalar (higher = better): either ``scorer = "module:function"``
(called as ``function(prompt, responses) -> list[float]``; a callable also works when options are built
in code), or ``model_dir`` = a local Hugging Face sequence-classification reward model (one logit), loaded
with transformers/torch directly (connectors never import ``service``). Several *AI raters* share one
scorer and differ by ``seed`` and ``temperature`` (``raters: [{"id", "seed", "temperature"}]``, default
``raters_per_item`` raters ``ai-0..``): pairwise picks A with probability sigmoid((sA - sB) / T) (``tie``
when |sA - sB| < ``tie_margin``), ranking sorts Gumbel-perturbed scores, rating maps sigmoid(s / T) onto
1..scale, binary draws up with probability sigmoid(s / T). Draws are deterministic in (seed, item).

No wire: ``submit_batch`` writes the batch to ``<state_dir>/<key>/request.json`` (idempotent); ``fetch``
scores ``page_size`` items per page; the batch is completed once every item has been scored. Rater ids
are ``model:<name>/<rater id>`` so agreement reports can put AI raters next to humans.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import httpx

from connectors.base import (
    BatchRequest,
    BatchState,
    Capabilities,
    JudgmentKind,
    ResultPage,
    VendorBatchRef,
    VendorBatchStatus,
    VendorJudgment,
    response_letter,
)
from connectors.errors import VendorRejected
from connectors.mapping import decode_cursor, encode_cursor

__all__ = ["ModelConnector", "load_reward_model_scorer"]

Scorer = Callable[[str, Sequence[str]], Sequence[float]]


def load_reward_model_scorer(model_dir: str | Path, *, device: str = "cpu", max_length: int = 512) -> Scorer:
    """A transformers sequence-classification reward model (``num_labels=1``) as a scorer."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).to(device).eval()

    def score(prompt: str, responses: Sequence[str]) -> list[float]:
        batch = tokenizer([prompt] * len(responses), list(responses), truncation=True, max_length=max_length,
                          padding=True, return_tensors="pt").to(device)
        with torch.no_grad():
            logits = model(**batch).logits
        return [float(x) for x in logits[:, 0]]

    return score


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


class ModelConnector:
    name: ClassVar[str] = "model"
    capabilities: ClassVar[Capabilities] = Capabilities(
        per_rater_identity=True, webhooks=False, idempotent_submit=True, cancel=True, cost=False)

    def __init__(self, scorer: Scorer, *, state_dir: Path, model_name: str = "model",
                 raters: Sequence[Mapping[str, Any]] | None = None, tie_margin: float = 0.0, page_size: int = 32) -> None:
        self._scorer = scorer
        self._state = state_dir
        self._model = model_name
        self._raters = list(raters) if raters else None
        self._tie = tie_margin
        self._page_size = page_size

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *,
                     transport: httpx.BaseTransport | None = None) -> ModelConnector:
        scorer = options.get("scorer")
        if isinstance(scorer, str):
            module, _, attr = scorer.partition(":")
            scorer = getattr(importlib.import_module(module), attr)
            name = options.get("model_name") or attr
        elif callable(scorer):
            name = options.get("model_name") or getattr(scorer, "__name__", "model")
        elif options.get("model_dir"):
            scorer = load_reward_model_scorer(options["model_dir"], device=str(options.get("device", "cpu")))
            name = options.get("model_name") or Path(str(options["model_dir"])).name
        else:
            raise VendorRejected("model: set options.scorer ('module:function') or options.model_dir", vendor="model")
        state = Path(str(options.get("state_dir") or Path.home() / ".crowdbridge" / "model-rater")).expanduser()
        return cls(scorer, state_dir=state, model_name=str(name), raters=options.get("raters"),
                   tie_margin=float(options.get("tie_margin", 0.0)), page_size=int(options.get("page_size", 32)))

    def _dir(self, ref: VendorBatchRef) -> Path:
        return self._state / ref.vendor_batch_id

    def submit_batch(self, req: BatchRequest) -> VendorBatchRef:
        folder = self._state / req.idempotency_key
        created = not (folder / "request.json").exists()
        if created:
            folder.mkdir(parents=True, exist_ok=True)
            raters = self._raters or [{"id": f"ai-{i}", "seed": i, "temperature": 1.0}
                                      for i in range(req.raters_per_item)]
            body = {"kind": req.kind.value, "scale": req.rating_scale, "raters": raters,
                    "submitted_at": datetime.now(timezone.utc).isoformat(),
                    "tasks": [{"item_id": t.item_id, "prompt": t.prompt, "responses": list(t.responses)}
                              for t in req.tasks]}
            (folder / "request.json.tmp").write_text(json.dumps(body))
            (folder / "request.json.tmp").replace(folder / "request.json")
        return VendorBatchRef(vendor=self.name, vendor_batch_id=req.idempotency_key, created=created)

    def _request(self, ref: VendorBatchRef) -> dict[str, Any]:
        return json.loads((self._dir(ref) / "request.json").read_text())

    def poll(self, ref: VendorBatchRef) -> VendorBatchStatus:
        body = self._request(ref)
        total = len(body["tasks"])
        expected = total * len(body["raters"])
        if (self._dir(ref) / "SCORED").exists():
            return VendorBatchStatus(BatchState.completed, total, expected, expected)
        state = BatchState.cancelled if (self._dir(ref) / "CANCELLED").exists() else BatchState.in_progress
        return VendorBatchStatus(state, total, expected, 0)

    def judge(self, kind: JudgmentKind, scale: int, rater: Mapping[str, Any], item_id: str,
              scores: Sequence[float]) -> str:
        """One AI rater's canonical label for one item, from the scorer's scores."""
        rng = random.Random(int(hashlib.sha256(f"{rater.get('seed', 0)}/{item_id}".encode()).hexdigest()[:12], 16))
        temperature = max(1e-6, float(rater.get("temperature", 1.0)))
        if kind is JudgmentKind.pairwise:
            diff = scores[0] - scores[1]
            if abs(diff) < self._tie:
                return "tie"
            return "A" if rng.random() < _sigmoid(diff / temperature) else "B"
        if kind is JudgmentKind.ranking:
            noisy = [s / temperature - math.log(-math.log(max(1e-12, rng.random()))) for s in scores]
            order = sorted(range(len(scores)), key=lambda i: -noisy[i])
            return ">".join(response_letter(i) for i in order)
        if kind is JudgmentKind.rating:
            p = _sigmoid(scores[0] / temperature)
            return str(min(scale, max(1, 1 + int(p * scale + (rng.random() - 0.5)))))
        return "up" if rng.random() < _sigmoid(scores[0] / temperature) else "down"

    def fetch_judgments(self, ref: VendorBatchRef, cursor: str | None) -> ResultPage:
        folder = self._dir(ref)
        body = self._request(ref)
        offset = int(decode_cursor(cursor).get("item", 0))
        if (folder / "CANCELLED").exists() and not (folder / "SCORED").exists():
            return ResultPage(judgments=(), malformed=(), cursor=cursor, has_more=False)
        kind = JudgmentKind(body["kind"])
        tasks = body["tasks"][offset: offset + self._page_size]
        started = datetime.fromisoformat(body["submitted_at"])
        judgments = []
        for task in tasks:
            scores = list(self._scorer(task["prompt"], task["responses"]))
            now = datetime.now(timezone.utc)
            for rater in body["raters"]:
                label = self.judge(kind, int(body["scale"]), rater, task["item_id"], scores)
                rater_id = f"model:{self._model}/{rater['id']}"
                jid = hashlib.sha256(f"{ref.vendor_batch_id}/{task['item_id']}/{rater_id}".encode()).hexdigest()[:32]
                judgments.append(VendorJudgment(
                    vendor_judgment_id=f"model:{jid}", item_id=task["item_id"], rater_id=rater_id, label=label,
                    submitted_at=now, started_at=started, cost=0.0,
                    raw={"model": self._model, "rater": dict(rater), "scores": scores}))
        end = offset + len(tasks)
        more = end < len(body["tasks"])
        if not more:
            (folder / "SCORED").touch()
        return ResultPage(judgments=tuple(judgments), malformed=(), cursor=encode_cursor({"item": end}),
                          has_more=more)

    def cancel(self, ref: VendorBatchRef) -> None:
        if not (self._dir(ref) / "SCORED").exists():
            (self._dir(ref) / "CANCELLED").touch()
