"""Sealed secrets across a server key rotation (`arca admin rotate-secret-key`).

`reseal_all` opens every sealed secret with whichever key it was sealed under (the current server
key or one of the previous ones) and seals it again under the current key, in one transaction.
Once it reports nothing left under an older key, the previous keys can be dropped."""

from __future__ import annotations

import logging

from sqlalchemy import select

from app.auth.secretbox import SecretBox, SecretUnreadable
from app.config import reload_secret_keys
from app.db.models import AccessKey, RoleSession, Webhook
from app.observability.webhooks import webhook_context
from app.services.context import Arca
from app.services.identity import key_context

log = logging.getLogger("arca.sealing")
# Tables with sealed secrets: (model, the column with the sealed value, what each is bound to)
SEALED = ((AccessKey, "secret_sealed", lambda row: key_context(row.access_key_id)),
          (RoleSession, "secret_sealed", lambda row: key_context(row.access_key_id)),
          (Webhook, "secret", lambda row: webhook_context(row.id)))


def reopen(arca: Arca) -> None:
    """Read the server keys again (after the key file was rotated)."""
    arca.box = SecretBox(reload_secret_keys(arca.settings))


def reseal_all(arca: Arca) -> dict:
    counts = {"resealed": 0, "alreadyCurrent": 0, "unreadable": []}
    with arca.db.session() as s:
        for model, column, context in SEALED:
            for row in s.scalars(select(model)):
                sealed = getattr(row, column)
                if sealed is None:
                    continue
                if arca.box.is_current(sealed):
                    counts["alreadyCurrent"] += 1
                    continue
                try:
                    setattr(row, column, arca.box.seal(arca.box.open(sealed, context(row)), context(row)))
                    counts["resealed"] += 1
                except SecretUnreadable as exc:
                    counts["unreadable"].append(f"{model.__tablename__}:{context(row)}: {exc}")
    counts["currentKey"] = arca.box.current_kid
    return counts
