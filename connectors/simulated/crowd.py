"""The simulated crowd: raters with an accuracy, spammers, position bias and turnaround,
answering against a hidden truth so that reconciliation and reward models can be scored.

Every response text has a latent quality in [0, 1]. The truth oracle knows it for texts it
was given (``chosen`` -> 1, ``rejected`` -> 0); any other text gets a stable pseudo-random
quality from its hash. Truth per kind: pairwise -> the better response ("A"/"B"); ranking
-> responses by quality; rating -> quality mapped onto the Likert scale; binary -> up
when quality >= 0.5.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CrowdConfig", "Rater", "TruthOracle", "build_pool", "rater_answer", "truth_label"]

LETTERS = string.ascii_uppercase


def _text_key(text: str) -> str:
    return hashlib.sha256(text.strip().encode()).hexdigest()[:32]


@dataclass
class TruthOracle:
    qualities: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_files(cls, paths: Iterable[Path]) -> TruthOracle:
        """Rows with ``chosen``/``rejected`` (qualities 1 and 0) or ``text``/``quality``; .jsonl or .jsonl.gz."""
        oracle = cls()
        for path in paths:
            opener = gzip.open if str(path).endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as fh:
                for line in fh:
                    if not line.strip():
                        continue
                    row = json.loads(line)
                    if "chosen" in row:
                        oracle.qualities[_text_key(row["chosen"])] = 1.0
                        oracle.qualities[_text_key(row["rejected"])] = 0.0
                    else:
                        oracle.qualities[_text_key(row["text"])] = float(row["quality"])
        return oracle

    def quality(self, text: str) -> float:
        key = _text_key(text)
        if key in self.qualities:
            return self.qualities[key]
        return int(key[:8], 16) / 0xFFFFFFFF


def truth_label(oracle: TruthOracle, kind: str, responses: Sequence[str], scale: int = 5) -> str:
    q = [oracle.quality(r) for r in responses]
    if kind == "pairwise":
        return "A" if q[0] >= q[1] else "B"
    if kind == "ranking":
        order = sorted(range(len(q)), key=lambda i: (-q[i], i))
        return ">".join(LETTERS[i] for i in order)
    if kind == "rating":
        return str(1 + round(q[0] * (scale - 1)))
    return "up" if q[0] >= 0.5 else "down"


@dataclass(frozen=True)
class Rater:
    rater_id: str
    accuracy: float  # probability of answering the truth when not biased/spamming
    spammer: bool
    position_bias: float  # probability of answering "A" / the first response regardless
    speed: float  # multiplier on turnaround (>1 slower)


@dataclass(frozen=True)
class CrowdConfig:
    n_raters: int = 60
    good_share: float = 0.7
    good_accuracy: tuple[float, float] = (0.82, 0.95)
    mediocre_accuracy: tuple[float, float] = (0.6, 0.75)
    spammer_share: float = 0.1
    position_bias: float = 0.05
    tie_rate: float = 0.03
    turnaround_s: float = 2.0  # median seconds from submission to a judgment being returned
    work_time_s: float = 40.0  # simulated seconds a rater spends on one item (started -> submitted)
    seed: int = 0


def build_pool(config: CrowdConfig) -> list[Rater]:
    rng = random.Random(config.seed)
    pool: list[Rater] = []
    n_spam = round(config.n_raters * config.spammer_share)
    n_good = round(config.n_raters * config.good_share)
    for i in range(config.n_raters):
        spammer = i < n_spam
        band = config.good_accuracy if n_spam <= i < n_spam + n_good else config.mediocre_accuracy
        pool.append(Rater(rater_id=f"sim-rater-{i:04d}", accuracy=0.0 if spammer else rng.uniform(*band),
                          spammer=spammer, position_bias=config.position_bias * (3 if spammer else 1),
                          speed=rng.uniform(0.5, 2.0)))
    rng.shuffle(pool)
    return pool


def rater_answer(rng: random.Random, rater: Rater, kind: str, truth: str, n_responses: int,
                 scale: int, tie_rate: float) -> str:
    """One rater's answer: biased, spamming, correct with ``accuracy``, else a plausible wrong answer."""
    if rng.random() < rater.position_bias:
        return _first_choice(kind, n_responses, scale)
    if rater.spammer or rng.random() >= rater.accuracy:
        return _wrong_or_random(rng, kind, truth, n_responses, scale, random_only=rater.spammer,
                                tie_rate=tie_rate)
    return truth


def _first_choice(kind: str, n: int, scale: int) -> str:
    return {"pairwise": "A", "ranking": ">".join(LETTERS[:n]), "rating": str(scale), "binary": "up"}[kind]


def _wrong_or_random(rng: random.Random, kind: str, truth: str, n: int, scale: int, *, random_only: bool,
                     tie_rate: float) -> str:
    if kind == "pairwise":
        if rng.random() < tie_rate * 5:
            return "tie"
        return rng.choice("AB") if random_only else ("B" if truth == "A" else "A")
    if kind == "ranking":
        order = list(truth.split(">"))
        if random_only:
            rng.shuffle(order)
        else:
            i = rng.randrange(len(order) - 1)
            order[i], order[i + 1] = order[i + 1], order[i]
        return ">".join(order)
    if kind == "rating":
        if random_only:
            return str(rng.randint(1, scale))
        step = rng.choice((-1, 1))
        value = int(truth) + step
        return str(value if 1 <= value <= scale else int(truth) - step)
    return rng.choice(("up", "down")) if random_only else ("down" if truth == "up" else "up")
