"""Sealed secrets across a server key rotation (`arca admin rotate-secret-key`).

`reseal_all` opens every sealed secret (access keys, role sessions, webhooks, the credentials of
custom external connections) with whichever key it was sealed under (the current server key or one
of the previous ones) and seals it again under the current key, in one transaction. Once it reports
nothing left under an older key, the previous keys can be dropped."""

from __future__ import annotations

import logging

from sqlalchemy import select, update

from app.auth.secretbox import SecretUnreadable
from app.db.models import AccessKey, ExternalConnection, RoleSession, Webhook
from app.observability.webhooks import webhook_context
from app.services.connections import connection_context
from app.services.context import Arca
from app.services.identity import key_context

log = logging.getLogger("arca.sealing")
# Tables with sealed secrets: (model, the column with the sealed value, what each is bound to)
SEALED = ((AccessKey, "secret_sealed", lambda row: key_context(row.access_key_id)),
          (RoleSession, "secret_sealed", lambda row: key_context(row.access_key_id)),
          (Webhook, "secret", lambda row: webhook_context(row.id)),
          (ExternalConnection, "secret", lambda row: connection_context(row.name)))


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
                    value = arca.box.seal(arca.box.open(sealed, context(row)), context(row))
                except SecretUnreadable as exc:
                    counts["unreadable"].append(f"{model.__tablename__}:{context(row)}: {exc}")
                    continue
                # A statement, not an attribute change: the same secret under another key is no
                # change of the row, and audits none (UpdateExternalConnection would say "secret").
                s.execute(update(model).where(model.id == row.id).values({column: value}))
                counts["resealed"] += 1
    counts["currentKey"] = arca.box.current_kid
    return counts
