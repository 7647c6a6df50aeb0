"""Upstream repositories and external connections, shared by the three formats.

`chain.order()` gives the resolution order of a repository for one package (the repository, then
each upstream depth-first in order, each repository's external connection after its upstreams),
with package origin controls applied on every edge. `remote` fetches from an external
connection: timeout, circuit breaker, single-flight, ETag revalidation, SSRF guard, and a
DB-backed copy of remote metadata so a dead remote still serves what was retained."""
