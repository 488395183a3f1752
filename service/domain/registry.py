"""The model registry: versions with metrics, config, dataset hash, parent and artifact path."""

from __future__ import annotations

import uuid

from sqlmodel import Session, col, select

from service.errors import InvalidInput, NotFound
from service.storage.models import ModelVersion

__all__ = ["get_version", "list_versions", "promote_version", "serving_version"]


def list_versions(session: Session, *, family: str | None = None) -> list[ModelVersion]:
    query = select(ModelVersion).order_by(col(ModelVersion.family), col(ModelVersion.version))
    if family:
        query = query.where(ModelVersion.family == family)
    return list(session.exec(query))


def get_version(session: Session, ref: str) -> ModelVersion:
    """By id, or as ``FAMILY:VERSION`` (``FAMILY:latest`` for the newest)."""
    model: ModelVersion | None = None
    if ":" in ref:
        family, _, version = ref.rpartition(":")
        query = select(ModelVersion).where(ModelVersion.family == family)
        if version == "latest":
            model = session.exec(query.order_by(col(ModelVersion.version).desc())).first()
        elif version.isdigit():
            model = session.exec(query.where(ModelVersion.version == int(version))).first()
        else:
            raise InvalidInput(f"{ref!r}: the version after ':' is a number or 'latest'")
    else:
        try:
            model = session.get(ModelVersion, uuid.UUID(ref))
        except ValueError as exc:
            raise InvalidInput(f"{ref!r} is neither a model version id nor FAMILY:VERSION") from exc
    if model is None:
        raise NotFound("model version", ref)
    return model


def serving_version(session: Session, family: str) -> ModelVersion | None:
    """The promoted version a family serves (the newest promoted one)."""
    return session.exec(select(ModelVersion).where(ModelVersion.family == family)
                        .where(ModelVersion.promoted == True)  # noqa: E712
                        .order_by(col(ModelVersion.version).desc())).first()


def promote_version(session: Session, ref: str) -> ModelVersion:
    """Make ``ref`` the family's serving version by hand (the others stay registered, unpromoted)."""
    model = get_version(session, ref)
    for other in session.exec(select(ModelVersion).where(ModelVersion.family == model.family)
                              .where(ModelVersion.id != model.id).where(ModelVersion.promoted == True)):  # noqa: E712
        other.promoted = False
        session.add(other)
    model.promoted = True
    session.add(model)
    session.commit()
    return model
