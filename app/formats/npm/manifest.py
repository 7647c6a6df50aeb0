"""What Arca records of a version's package.json (its manifest in the packument): the manifest
itself, the readme, and CodeArtifact's facts (dependencies, licenses, home page, repository)."""

from __future__ import annotations

DEP_FIELDS = (("dependencies", "regular"), ("devDependencies", "dev"),
              ("peerDependencies", "peer"), ("optionalDependencies", "optional"))
INSTALL_SCRIPTS = ("preinstall", "install", "postinstall")


def version_attributes(name: str, manifest: dict, readme: str, provenance: dict | None = None) -> dict:
    m = {k: v for k, v in manifest.items() if k not in ("readme", "_attachments")}
    # The registry writes these (tarball URL, attestations, signatures), never the publisher.
    dist = {k: v for k, v in (m.get("dist") or {}).items() if k not in ("tarball", "attestations", "signatures")}
    m["dist"] = dist
    scripts = m.get("scripts") if isinstance(m.get("scripts"), dict) else {}
    if "hasInstallScript" not in m and any(s in scripts for s in INSTALL_SCRIPTS):
        m["hasInstallScript"] = True
    attrs: dict = {"manifest": m, "readme": readme if isinstance(readme, str) else "",
                   "dependencies": dependencies(m)}
    if isinstance(m.get("homepage"), str):
        attrs["homePage"] = m["homepage"]
    repo = m.get("repository")
    url = repo.get("url") if isinstance(repo, dict) else repo
    if isinstance(url, str):
        attrs["sourceCodeRepository"] = url
    licenses = licenses_of(m)
    if licenses:
        attrs["licenses"] = licenses
    if provenance:
        attrs["provenance"] = provenance  # {"predicateType", "sha256" (the stored bundle), "size"}
    return attrs


def dependencies(m: dict) -> list[dict]:
    """CodeArtifact's PackageDependency shape (namespace = scope without '@')."""
    out = []
    for field, kind in DEP_FIELDS:
        deps = m.get(field)
        if not isinstance(deps, dict):
            continue
        for dep, req in deps.items():
            scope, _, bare = dep[1:].partition("/") if dep.startswith("@") and "/" in dep else ("", "", dep)
            d = {"package": bare, "dependencyType": kind, "versionRequirement": str(req)}
            if scope:
                d["namespace"] = scope
            out.append(d)
    return out


def licenses_of(m: dict) -> list[dict]:
    lic = m.get("license")
    if isinstance(lic, str):
        return [{"name": lic}]
    if isinstance(lic, dict) and lic.get("type"):
        return [{"name": lic["type"], **({"url": lic["url"]} if lic.get("url") else {})}]
    out = []
    for x in m.get("licenses") or []:
        if isinstance(x, dict) and x.get("type"):
            out.append({"name": x["type"], **({"url": x["url"]} if x.get("url") else {})})
    return out
