"""Parallel Maven deploys (Maven 3.9/4's resolver puts a deploy's files at once, each followed by its
checksums, with maven-metadata.xml alongside; other uploaders send a checksum before its file).
Only Maven 3.8 runs here, so these orders are reproduced with raw PUTs: in fixed orders one after
another, and all at once from threads. Every order of the same PUTs ends in the same version, and
every checksum is verified against its file, whichever came first."""

from __future__ import annotations

import hashlib
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from tests.test_maven_curl import G, GP, Repo, _repo, pom_of
from tests.web_support import services

ALGS = ("sha1", "md5")  # what Maven sends beside each file (3.9 can add sha256/sha512)


def deploy_files(version: str) -> dict[str, bytes]:
    return {f"app-{version}.pom": pom_of(G, "app", version),
            f"app-{version}.jar": b"jar " + version.encode() * 1000,
            f"app-{version}-sources.jar": b"sources " + version.encode(),
            f"app-{version}-javadoc.jar": b"javadoc " + version.encode()}


def puts_of(repo: Repo, version: str, files: dict[str, bytes], *, algs=ALGS) -> dict[str, list]:
    """The PUTs of one deploy, grouped as the resolver sends them: per file, the file then its checksums
    (`checksums` holds the checksum PUTs alone, `metadata` the maven-metadata.xml PUT)."""
    base = f"{GP}/app/{version}/"
    groups = {}
    for name, data in files.items():
        groups[name] = [(base + name, data)] + [(f"{base}{name}.{alg}", hashlib.new(alg, data).hexdigest().encode())
                                                for alg in algs]
    groups["metadata"] = [(f"{GP}/app/maven-metadata.xml", metadata(version))]
    return groups


def metadata(version: str, listed: tuple[str, ...] = ()) -> bytes:
    vs = "".join(f"<version>{v}</version>" for v in (*listed, version))
    return (f"<metadata><groupId>{G}</groupId><artifactId>app</artifactId><versioning><latest>{version}</latest>"
            f"<release>{version}</release><versions>{vs}</versions><lastUpdated>20260101000000</lastUpdated>"
            "</versioning></metadata>").encode()


def held_rows(repo: Repo) -> int:
    from app.db.models import HeldUpload, Repository
    from app.db.models import Domain

    arca = services(repo.server)
    with arca.db.read() as s:
        return s.scalar(select(func.count()).select_from(HeldUpload).join(Repository).join(Domain)
                        .where(Domain.name == repo.domain))


def assert_deployed(repo: Repo, version: str, files: dict[str, bytes], status: str) -> None:
    assert repo.versions("app") == {version: status}
    assets = repo.assets("app", version)
    assert set(assets) == set(files)
    for name, data in files.items():
        assert assets[name]["hashes"]["SHA-256"] == hashlib.sha256(data).hexdigest()
    assert held_rows(repo) == 0  # every held checksum was checked against its file and let go


def send(repo: Repo, path: str, data: bytes) -> int:
    r = repo.put(path, data)
    assert r.status_code in (200, 201, 202), (path, r.status_code, r.text)
    return r.status_code


ORDERS = {
    # Maven 3.8 and curl: each file, then its checksums; metadata last.
    "file-then-checksums": lambda g: [p for name in g if name != "metadata" for p in g[name]] + g["metadata"],
    # an uploader that sends every checksum before any file
    "checksums-first": lambda g: [p for name in g if name != "metadata" for p in g[name][1:]]
                                 + [g[name][0] for name in g if name != "metadata"] + g["metadata"],
    # maven-metadata.xml before any file of the version has come
    "metadata-first": lambda g: g["metadata"] + [p for name in g if name != "metadata" for p in g[name]],
    # everything backwards: metadata, then checksums, then the files
    "reversed": lambda g: list(reversed([p for name in g for p in g[name]])),
    # parallel puts interleaved: the first PUT of every group, then the second of every group, ...
    "interleaved": lambda g: [p for row in itertools.zip_longest(*g.values()) for p in row if p is not None],
}


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_every_order_of_a_deploy_ends_published_with_every_checksum_verified(server, unique, order):
    repo = _repo(server, unique)
    files = deploy_files("1.0")
    statuses = [send(repo, path, data) for path, data in ORDERS[order](puts_of(repo, "1.0", files))]
    assert_deployed(repo, "1.0", files, "Published")
    if order == "checksums-first":
        assert statuses[:8] == [202] * 8  # held: no file yet
    for name, data in files.items():
        for alg in ("sha1", "md5", "sha256", "sha512"):
            assert repo.get(f"{GP}/app/1.0/{name}.{alg}").text == hashlib.new(alg, data).hexdigest()


@pytest.mark.parametrize("order", ["file-then-checksums", "checksums-first", "reversed", "interleaved"])
def test_without_metadata_every_order_ends_unfinished(server, unique, order):
    repo = _repo(server, unique)
    files = deploy_files("2.0")
    groups = puts_of(repo, "2.0", files)
    groups["metadata"] = []
    for path, data in ORDERS[order](groups):
        send(repo, path, data)
    assert_deployed(repo, "2.0", files, "Unfinished")


def test_all_puts_at_once_end_published(server, unique):
    """One thread per file (the file, then its checksums, as the resolver's parallel put does) and one
    for maven-metadata.xml, all released together; run three times on three versions."""
    repo = _repo(server, unique)
    for version in ("3.0", "3.1", "3.2"):
        files = deploy_files(version)
        groups = puts_of(repo, version, files, algs=("sha1", "md5", "sha256", "sha512"))
        start = threading.Barrier(len(groups))

        def run(puts):
            start.wait()
            return [send(repo, path, data) for path, data in puts]

        with ThreadPoolExecutor(len(groups)) as pool:
            list(pool.map(run, groups.values()))
        assert repo.versions("app")[version] == "Published"
        assets = repo.assets("app", version)
        assert {n: a["hashes"]["SHA-1"] for n, a in assets.items()} == \
               {n: hashlib.sha1(d).hexdigest() for n, d in files.items()}
    assert held_rows(repo) == 0


def test_a_checksum_sent_first_that_disagrees_refuses_its_file_and_nothing_of_it_is_kept(server, unique):
    repo = _repo(server, unique)
    jar, data = f"{GP}/app/4.0/app-4.0.jar", b"the real jar"
    wrong = hashlib.sha1(b"another jar").hexdigest()
    assert repo.put(jar + ".sha1", wrong.encode()).status_code == 202
    assert repo.put(jar + ".md5", hashlib.md5(data).hexdigest().encode()).status_code == 202
    refused = repo.put(jar, data)
    assert refused.status_code == 400
    assert "SHA1 mismatch for app-4.0.jar" in refused.text and wrong in refused.text
    # Nothing of the file is kept (not even its version), and the held checksums are gone with it.
    assert repo.packages() == []
    assert repo.get(jar).status_code == 404
    assert held_rows(repo) == 0
    # Sent again, with the right checksum this time, the deploy goes through.
    assert repo.put(jar + ".sha1", hashlib.sha1(data).hexdigest().encode()).status_code == 202
    assert repo.put(jar, data).status_code == 201
    assert repo.versions("app") == {"4.0": "Unfinished"}
    assert held_rows(repo) == 0


def test_a_wrong_checksum_racing_its_file_is_refused_whichever_comes_first(server, unique):
    repo = _repo(server, unique)
    for i in range(6):
        jar, data = f"{GP}/app/5.{i}/app-5.{i}.jar", f"jar {i}".encode()
        wrong = hashlib.sha1(b"not it").hexdigest().encode()
        start = threading.Barrier(2)

        def put(path, body):
            start.wait()
            return repo.put(path, body).status_code

        with ThreadPoolExecutor(2) as pool:
            file_status, sum_status = pool.map(put, [jar, jar + ".sha1"], [data, wrong])
        # Either the file came first (its checksum is refused, the file stays) or the checksum did
        # (held, then the file is refused and nothing of it is kept): exactly one refusal.
        assert (file_status, sum_status) in ((201, 400), (400, 202)), (file_status, sum_status)
        kept = f"5.{i}" in repo.versions("app") if repo.packages() else False
        assert kept == (file_status == 201)
    assert held_rows(repo) == 0


def test_a_metadata_upload_naming_old_versions_does_not_publish_them_later(server, unique):
    """Only the version the deploy is about (<latest>/<release>) waits for its files: a version the
    uploaded metadata merely lists (deleted here meanwhile, say) stays Unfinished when curl sends it."""
    repo = _repo(server, unique)
    assert repo.put(f"{GP}/app/maven-metadata.xml", metadata("7.0", listed=("6.0",))).status_code == 200
    assert repo.put(f"{GP}/app/6.0/app-6.0.jar", b"six").status_code == 201
    assert repo.put(f"{GP}/app/7.0/app-7.0.jar", b"seven").status_code == 201
    assert repo.versions("app") == {"6.0": "Unfinished", "7.0": "Published"}
    assert held_rows(repo) == 0
