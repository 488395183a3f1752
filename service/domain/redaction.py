"""PII redaction before any text leaves for a vendor, recorded so it can be audited.

Built-in kinds: emails, phone numbers, API keys and tokens (provider prefixes, bearer tokens,
``key=...`` assignments, long high-entropy strings), and card numbers (Luhn-checked, so order
numbers survive). Extra patterns come from settings (``CROWDBRIDGE_REDACTION_PATTERNS`` as a JSON
object of name -> regex). Each replacement is ``[REDACTED:KIND]``; what was redacted is recorded
per batch and item as counts by kind plus a SHA-256 of each original span (never the span
itself), so an auditor can check a suspected leak against the record without re-exposing it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["BUILTIN_PATTERNS", "Redaction", "Redactor"]

BUILTIN_PATTERNS: dict[str, str] = {
    "EMAIL": r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    "API_KEY": (r"\b(?:sk|pk|rk)[-_](?:live|test|proj)?[-_]?[A-Za-z0-9]{16,}\b"
                r"|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bxox[abprs]-[A-Za-z0-9-]{10,}\b"
                r"|\bAIza[0-9A-Za-z_-]{35}\b|\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{5,}"),
    # group 1 is the secret; the label before it ("Bearer ", "api_key=") stays readable
    "TOKEN": (r"(?:(?i:bearer)\s+|(?i:api[_-]?key|access[_-]?token|token|secret|password)[\"']?\s?[:=]\s?[\"']?)"
              r"([A-Za-z0-9._~+/=-]{12,})"),
    "CARD": r"\b(?:\d[ -]?){12,18}\d\b",
    # +country numbers, (415) 555-0199, 415-555-0199 / 415.555.0199; not bare digit runs (order numbers)
    "PHONE": (r"(?<![\w+])(?:\+\d{1,3}[ .-]?\(?\d{1,4}\)?(?:[ .-]?\d{2,4}){2,3}"
              r"|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4})(?![ .-]?\d)"),
}


def _luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@dataclass
class Redaction:
    """What was taken out of one text: counts by kind and the SHA-256 of each span."""

    counts: dict[str, int] = field(default_factory=dict)
    digests: list[str] = field(default_factory=list)

    def add(self, kind: str, span: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.digests.append(hashlib.sha256(span.encode()).hexdigest())

    def merge(self, other: Redaction) -> None:
        for kind, n in other.counts.items():
            self.counts[kind] = self.counts.get(kind, 0) + n
        self.digests += other.digests

    def __bool__(self) -> bool:
        return bool(self.counts)


class Redactor:
    """Applies the patterns in order (keys and tokens before phones and cards, so a key's digits
    are not half-matched as a phone number)."""

    ORDER = ("EMAIL", "API_KEY", "TOKEN", "CARD", "PHONE")

    def __init__(self, extra: Mapping[str, str] | None = None, *, enabled: bool = True) -> None:
        self.enabled = enabled
        patterns = {k: BUILTIN_PATTERNS[k] for k in self.ORDER}
        for name, regex in (extra or {}).items():
            patterns[name.upper()] = regex
        self.patterns = [(name, re.compile(regex)) for name, regex in patterns.items()]

    def redact(self, text: str) -> tuple[str, Redaction]:
        record = Redaction()
        if not self.enabled or not text:
            return text, record
        for kind, pattern in self.patterns:
            def replace(match: re.Match[str], kind: str = kind) -> str:
                whole = match.group(0)
                secret = match.group(1) if match.re.groups else whole
                if kind == "CARD":
                    digits = re.sub(r"\D", "", secret)
                    if not 13 <= len(digits) <= 19 or not _luhn_ok(digits):
                        return whole
                record.add(kind, secret)
                return whole.replace(secret, f"[REDACTED:{kind}]")

            text = pattern.sub(replace, text)
        return text, record
