"""API tokens: created with a scope, stored hashed, revoked; rater-id pseudonyms for auditors.

A token is ``cb_`` + 43 url-safe random characters (256 bits). Only its SHA-256 is stored:
a leaked database does not leak usable tokens, and a fast hash is enough for a secret
with that much entropy (no password stretching needed). The plain token is returned once.

Auditors see rater ids as ``r_`` + 16 hex characters of HMAC-SHA256(key, rater_id): stable
across requests (so agreement per rater can still be audited), not reversible without the
key. The key comes from ``CROWDBRIDGE_API_PSEUDONYM_KEY``; if unset, one is generated once
and kept in the ``apisecret`` table, so every API process of a deployment agrees.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import uuid
from dataclasses import dataclass

from sqlmodel import Session, col, select

from service.errors import InvalidInput, NotFound, ServiceError
from service.storage.models_api import ApiSecret, ApiToken, Scope
from service.storage.types import utcnow

__all__ = ["Forbidden", "IssuedToken", "Pseudonymizer", "Unauthenticated", "authenticate", "create_token",
           "list_tokens", "pseudonymizer", "require_scope", "revoke_token"]

TOKEN_PREFIX = "cb_"
PSEUDONYM_KEY_ENV = "CROWDBRIDGE_API_PSEUDONYM_KEY"
_SECRET_NAME = "rater_pseudonym_key"


class Unauthenticated(ServiceError):
    """No token, an unknown token or a revoked one."""

    code = "unauthenticated"


class Forbidden(ServiceError):
    """A valid token whose scope does not allow the action."""

    code = "forbidden"

    def __init__(self, needed: Scope, have: Scope) -> None:
        super().__init__(f"this action needs the {needed.value} scope; the token has {have.value}")
        self.needed = needed
        self.have = have


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    plain: str  # shown once; never stored


def _digest(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


def create_token(session: Session, *, name: str, scope: Scope | str) -> IssuedToken:
    if not name.strip():
        raise InvalidInput("a token needs a name (who or what uses it)")
    try:
        scope = Scope(scope)
    except ValueError:
        raise InvalidInput(f"scope must be one of {', '.join(s.value for s in Scope)}; got {scope!r}") from None
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(name=name.strip(), scope=scope, token_hash=_digest(plain), prefix=plain[:8])
    session.add(token)
    session.flush()
    return IssuedToken(token=token, plain=plain)


def _find(session: Session, ref: str | uuid.UUID) -> ApiToken:
    token = None
    try:
        token = session.get(ApiToken, uuid.UUID(str(ref)))
    except ValueError:
        pass
    if token is None:
        token = session.exec(select(ApiToken).where(ApiToken.name == str(ref))
                             .where(col(ApiToken.revoked_at).is_(None))).first()
    if token is None:
        raise NotFound("token", ref)
    return token


def revoke_token(session: Session, ref: str | uuid.UUID) -> ApiToken:
    """By id or by name (the newest live token of that name). Revoking twice is not an error."""
    token = _find(session, ref)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.add(token)
        session.flush()
    return token


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.exec(select(ApiToken).order_by(col(ApiToken.created_at))))


def authenticate(session: Session, plain: str | None) -> ApiToken:
    """The live token behind ``plain``; stamps ``last_used_at`` (at most once a minute)."""
    if not plain:
        raise Unauthenticated("send an API token: Authorization: Bearer <token> (crowdbridge tokens create)")
    token = session.exec(select(ApiToken).where(ApiToken.token_hash == _digest(plain))).first()
    if token is None or not hmac.compare_digest(token.token_hash, _digest(plain)):
        raise Unauthenticated("unknown API token")
    if token.revoked_at is not None:
        raise Unauthenticated("this API token was revoked")
    now = utcnow()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        token.last_used_at = now
        session.add(token)
        session.commit()
    return token


def require_scope(token: ApiToken, needed: Scope) -> None:
    if token.scope.rank < needed.rank:
        raise Forbidden(needed, token.scope)


@dataclass(frozen=True)
class Pseudonymizer:
    """Keyed HMAC of rater ids; ``enabled=False`` passes ids through (operators and admins)."""

    key: bytes
    enabled: bool = True

    def __call__(self, rater_id: str) -> str:
        if not self.enabled:
            return rater_id
        return "r_" + hmac.new(self.key, rater_id.encode(), hashlib.sha256).hexdigest()[:16]


def _pseudonym_key(session: Session) -> bytes:
    from_env = os.environ.get(PSEUDONYM_KEY_ENV)
    if from_env:
        return from_env.encode()
    row = session.get(ApiSecret, _SECRET_NAME)
    if row is None:
        session.add(ApiSecret(name=_SECRET_NAME, value=secrets.token_hex(32)))
        try:
            session.commit()
        except Exception:  # another process created it first: use theirs
            session.rollback()
        row = session.get(ApiSecret, _SECRET_NAME)
        assert row is not None
    return row.value.encode()


def pseudonymizer(session: Session, scope: Scope) -> Pseudonymizer:
    """Pseudonyms for auditors; plain ids for the scopes that run campaigns."""
    if scope is not Scope.auditor:
        return Pseudonymizer(key=b"", enabled=False)
    return Pseudonymizer(key=_pseudonym_key(session))
