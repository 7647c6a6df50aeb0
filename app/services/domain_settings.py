"""Arca's own settings of a domain (DescribeDomainSettings / UpdateDomainSettings): what CodeArtifact
has no setting for. Today: the dependency-confusion protection of the resolution order."""

from __future__ import annotations

from app.domain.errors import AccessDenied, ValidationError
from app.services import domains
from app.services.context import Arca, Principal
from app.services.origins import PROTECTION, protection_on

DESCRIBE = "codeartifact:DescribeDomain"


def _shape(d) -> dict:
    return {"domainName": d.name, PROTECTION: protection_on(d)}


def describe_domain_settings(arca: Arca, principal: Principal, domain: str, owner: str | None = None) -> dict:
    with arca.db.read() as s:
        return _shape(domains.domain_for(arca, s, principal, DESCRIBE, domain, owner))


def update_domain_settings(arca: Arca, principal: Principal, domain: str, changes: dict,
                           owner: str | None = None) -> dict:
    """Administrators only: a domain setting changes what every repository of the domain serves."""
    if not principal.is_admin:
        raise AccessDenied(f"User {principal.arn} is not authorized to perform arca:UpdateDomainSettings: "
                           "only administrators change domain settings")
    value = changes.get(PROTECTION)
    if value is not None and not isinstance(value, bool):
        raise ValidationError(f"{PROTECTION} must be true or false")
    with arca.db.session() as s:
        d = domains.owned_domain(arca, s, domain, owner)
        if value is not None:
            d.settings = {**(d.settings or {}), PROTECTION: value}
        s.flush()
        return _shape(d)
