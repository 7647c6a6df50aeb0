"""PyPI through upstream repositories and `public:pypi`, with a real pypiserver as the remote and
real pip as the client: app -> libs -> proxy (public:pypi)."""

from __future__ import annotations

import concurrent.futures
import json
import hashlib
import threading

import httpx
import pytest

from tests.pypi_support import PY, index_url, make_sdist, make_wheel, pip_cmd, run, sdist_filename, twine_upload, \
    wait_for, wheel_filename
from tests.support.checks import stored_assets, stored_versions
from tests.support.server import clean_env, require_tool, start_server
from tests.upstream_support import Remote, start_pypiserver

JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture(scope="module")
def pub(tmp_path_factory):
    """The public index: a real pypiserver over a directory, behind a counting proxy."""
    root = tmp_path_factory.mktemp("pypiserver")
    files = root / "files"
    files.mkdir()
    srv = start_pypiserver(files, root / "pypiserver.log")
    remote = Remote(srv.url)
    remote.files = files
    remote.process = srv
    yield remote
    remote.close()
    srv.stop()


@pytest.fixture(scope="module")
def arca(tmp_path_factory, pub):
    srv = start_server(tmp_path_factory.mktemp("arca-up-pypi"), env={
        "ARCA_EXTERNAL_PUBLIC_PYPI": f"{pub.url}/simple/", "ARCA_UPSTREAM_MAX_AGE": "0",
        "ARCA_UPSTREAM_TIMEOUT": "5", "ARCA_UPSTREAM_BREAKER_FAILURES": "1000"})
    yield srv
    srv.stop()


@pytest.fixture
def chain(arca, unique):
    """Domain with app -> libs -> proxy(public:pypi)."""
    d = f"u{unique}"
    c = arca.boto()
    c.create_domain(domain=d)
    c.create_repository(domain=d, repository="proxy")
    c.associate_external_connection(domain=d, repository="proxy", externalConnection="public:pypi")
    c.create_repository(domain=d, repository="libs", upstreams=[{"repositoryName": "proxy"}])
    c.create_repository(domain=d, repository="app", upstreams=[{"repositoryName": "libs"}])
    return d


def _pip_install(arca, d, repo, target, *reqs, check=True):
    url = index_url(arca, d, repo, arca.token(d))
    return run(pip_cmd(PY, "install", "--target", str(target), "--index-url", url, *reqs), check=check,
               env=clean_env())


def _versions(arca, d, repo, name):
    return sorted(stored_versions(arca.boto(), domain=d, repository=repo, format="pypi", package=name))


def _get(arca, d, repo, path, **headers):
    return httpx.get(f"{arca.endpoint(d, 'pypi', repo)}{path}", auth=("aws", arca.token(d)), headers=headers,
                     timeout=30)


def test_pip_resolves_through_two_level_chain_and_retains_external(arca, pub, chain, unique, tmp_path):
    d = chain
    make_wheel(pub.files, f"pub-{unique}", "1.0")
    make_wheel(pub.files, f"pub-{unique}", "2.0")
    internal = make_wheel(tmp_path / "dist", f"int-{unique}", "1.0", requires=[f"pub-{unique}>=1"])
    twine_upload(arca.endpoint(d, "pypi", "libs"), arca.token(d), [internal])

    _pip_install(arca, d, "app", tmp_path / "t1", f"int-{unique}")
    installed = sorted(p.name for p in (tmp_path / "t1").iterdir() if p.name.endswith(".dist-info"))
    assert installed == [f"int_{unique}-1.0.dist-info", f"pub_{unique}-2.0.dist-info"]

    # The merged page of app: the public project's versions, links to this server only.
    page = _get(arca, d, "app", f"simple/pub-{unique}/", Accept=JSON).json()
    assert page["versions"] == ["1.0", "2.0"]
    assert all(f["url"] == f["filename"] for f in page["files"])
    # Retained in the repository holding the connection, origin EXTERNAL; not copied elsewhere.
    assert _versions(arca, d, "proxy", f"pub-{unique}") == ["2.0"]
    desc = arca.boto().describe_package_version(domain=d, repository="proxy", format="pypi",
                                                package=f"pub-{unique}", packageVersion="2.0")["packageVersion"]
    assert desc["origin"] == {"domainEntryPoint": {"externalConnectionName": "public:pypi"},
                              "originType": "EXTERNAL"}
    assert _versions(arca, d, "libs", f"pub-{unique}") == []
    assert _versions(arca, d, "app", f"pub-{unique}") == []
    # The internal package is served to app from libs, with its PEP 658 metadata.
    meta = _get(arca, d, "app", f"simple/int-{unique}/{wheel_filename(f'int-{unique}', '1.0')}.metadata")
    assert meta.status_code == 200 and f"Name: int-{unique}".encode() in meta.content


def test_retained_versions_install_when_the_remote_is_stopped(arca, pub, chain, unique, tmp_path):
    d = chain
    files = tmp_path / "own-remote"
    files.mkdir()
    make_wheel(files, f"keep-{unique}", "1.0")
    make_wheel(files, f"keep-{unique}", "2.0")
    make_wheel(files, f"never-{unique}", "1.0")
    own = start_pypiserver(files, tmp_path / "pypiserver.log")
    saved = pub.target
    pub.target = own.url
    try:
        _pip_install(arca, d, "app", tmp_path / "t1", f"keep-{unique}==1.0")
        own.stop()  # the real remote is gone
        assert own.proc.poll() is not None
        _pip_install(arca, d, "app", tmp_path / "t2", f"keep-{unique}==1.0")
        assert (tmp_path / "t2" / f"keep_{unique}-1.0.dist-info").is_dir()
        # The stale index still lists 2.0, but its file was never retained: pip fails on it.
        page = _get(arca, d, "app", f"simple/keep-{unique}/", Accept=JSON)
        assert page.status_code == 200 and page.json()["versions"] == ["1.0", "2.0"]
        r = _get(arca, d, "app", f"simple/keep-{unique}/{wheel_filename(f'keep-{unique}', '2.0')}")
        assert r.status_code == 502
        # Nothing retained at all: 502, not an empty page.
        assert _get(arca, d, "app", f"simple/never-{unique}/").status_code == 502
        assert _versions(arca, d, "proxy", f"keep-{unique}") == ["1.0"]
    finally:
        pub.target = saved
        own.stop()


def test_hash_mismatch_from_the_remote_is_refused(arca, pub, chain, unique, tmp_path):
    d = chain
    make_wheel(pub.files, f"bad-{unique}", "1.0")
    pub.tamper[f"/packages/bad_{unique}-"] = lambda body: body + b"tampered"
    name = wheel_filename(f"bad-{unique}", "1.0")
    try:
        r = _get(arca, d, "app", f"simple/bad-{unique}/{name}")
        assert r.status_code == 502 and "sha256" in r.text
        proc = _pip_install(arca, d, "app", tmp_path / "t", f"bad-{unique}", check=False)
        assert proc.returncode != 0
        assert _versions(arca, d, "proxy", f"bad-{unique}") == []
    finally:  # the remote is shared by the module's tests
        pub.tamper.pop(f"/packages/bad_{unique}-", None)
    # A correct remote file is accepted afterwards.
    assert _get(arca, d, "app", f"simple/bad-{unique}/{name}").status_code == 200
    assert _versions(arca, d, "proxy", f"bad-{unique}") == ["1.0"]


def test_single_flight_one_remote_fetch_for_concurrent_requests(arca, pub, chain, unique):
    d = chain
    path = make_wheel(pub.files, f"sf-{unique}", "1.0")
    token = arca.token(d)
    base = arca.endpoint(d, "pypi", "app")
    gate_page = f"/simple/sf-{unique}/"
    gate_file = f"/packages/{path.name}"

    def get(p):
        return httpx.get(base + p, auth=("aws", token), timeout=60)

    def held() -> int:
        """Requests for the gated path that reached the remote and wait at the gate."""
        return sum(1 for p, s, _ in pub.requests if p == gate_key and s == 0)

    for gate_key, rel in ((gate_page, f"simple/sf-{unique}/"), (gate_file, f"simple/sf-{unique}/{path.name}")):
        pub.gate[gate_key] = gate = threading.Event()
        try:
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                futures = [pool.submit(get, rel) for _ in range(8)]
                # The first fetch is held at the remote: the flight cannot end, so every request
                # that is not sharing it reaches the gate as well. Count once the first is there,
                # then release (no observation window: a request that comes after the flight
                # ended is a new fetch, legitimately, and is not counted as held).
                assert wait_for(lambda: held() >= 1)
                arrivals = held()
                gate.set()
                results = [f.result() for f in futures]
        finally:
            gate.set()
            pub.gate.pop(gate_key, None)
        assert arrivals == 1, pub.requests
        assert [r.status_code for r in results] == [200] * 8
        assert len({r.content for r in results}) == 1
    assert hashlib.sha256(get(f"simple/sf-{unique}/{path.name}").content).hexdigest() == \
        hashlib.sha256(path.read_bytes()).hexdigest()


def test_dependency_confusion_internal_name_does_not_take_public_versions(arca, pub, chain, unique, tmp_path):
    d = chain
    name = f"conf-{unique}"
    make_wheel(pub.files, name, "99.0", module_source="PUBLIC = True\n")
    internal = make_wheel(tmp_path / "dist", name, "1.0", module_source="PUBLIC = False\n")
    twine_upload(arca.endpoint(d, "pypi", "libs"), arca.token(d), [internal])

    _pip_install(arca, d, "app", tmp_path / "t", name)
    assert (tmp_path / "t" / f"conf_{unique}-1.0.dist-info").is_dir()
    assert "PUBLIC = False" in (tmp_path / "t" / f"conf_{unique}" / "__init__.py").read_text()
    page = _get(arca, d, "app", f"simple/{name}/", Accept=JSON).json()
    assert page["versions"] == ["1.0"]
    assert _get(arca, d, "app", f"simple/{name}/{wheel_filename(name, '99.0')}").status_code == 404
    assert _versions(arca, d, "proxy", name) == []
    origin = arca.boto().describe_package(domain=d, repository="libs", format="pypi", package=name)
    assert origin["package"]["originConfiguration"]["restrictions"]["upstream"] == "BLOCK"
    # Explicitly allowing upstream versions in libs lets the public version through.
    arca.boto().put_package_origin_configuration(domain=d, repository="libs", format="pypi", package=name,
                                                 restrictions={"publish": "ALLOW", "upstream": "ALLOW"})
    wait_for(lambda: _get(arca, d, "app", f"simple/{name}/", Accept=JSON).json()["versions"] == ["1.0", "99.0"])
    assert _get(arca, d, "app", f"simple/{name}/", Accept=JSON).json()["versions"] == ["1.0", "99.0"]


def test_remote_links_outside_the_connection_are_not_fetched(arca, pub, chain, unique, tmp_path):
    d = chain
    bait = Remote("http://127.0.0.1:9")  # anything reaching it would be an SSRF
    try:
        make_wheel(pub.files, f"ssrf-{unique}", "1.0")
        evil = wheel_filename(f"ssrf-{unique}", "6.6")
        link = f'<a href="{bait.url}/{evil}#sha256={"0" * 64}">{evil}</a><br>'.encode()
        pub.tamper[f"/simple/ssrf-{unique}/"] = lambda body: body.replace(b"</body>", link + b"</body>")
        page = _get(arca, d, "app", f"simple/ssrf-{unique}/", Accept=JSON).json()
        assert [f["filename"] for f in page["files"]] == [wheel_filename(f"ssrf-{unique}", "1.0")]
        assert _get(arca, d, "app", f"simple/ssrf-{unique}/{evil}").status_code == 404
        assert bait.requests == []
    finally:
        bait.close()
        pub.tamper.pop(f"/simple/ssrf-{unique}/", None)


def test_remote_index_revalidated_with_etag(arca, pub, chain, unique):
    d = chain
    make_wheel(pub.files, f"etag-{unique}", "1.0")
    key = f"/simple/etag-{unique}/"
    assert _get(arca, d, "proxy", f"simple/etag-{unique}/").status_code == 200
    assert _get(arca, d, "proxy", f"simple/etag-{unique}/").status_code == 200
    statuses = [(s, inm is not None) for p, s, inm in pub.requests if p == key]
    assert statuses == [(200, False), (304, True)]
    # A new remote version shows on the next revalidation.
    make_wheel(pub.files, f"etag-{unique}", "2.0")
    page = _get(arca, d, "proxy", f"simple/etag-{unique}/", Accept=JSON).json()
    assert page["versions"] == ["1.0", "2.0"]


def test_package_group_blocks_external_upstream(arca, pub, chain, unique, tmp_path):
    """A package group with EXTERNAL_UPSTREAM=BLOCK keeps its packages from coming in through the
    external connection; other packages still do; unblocking lets them through."""
    d = chain
    blocked, free = f"grp-{unique}", f"free-{unique}"
    make_wheel(pub.files, blocked, "1.0")
    make_wheel(pub.files, free, "1.0")
    c = arca.boto()
    group = f"/pypi//{blocked}$"
    c.create_package_group(domain=d, packageGroup=group)
    c.update_package_group_origin_configuration(domain=d, packageGroup=group,
                                                restrictions={"EXTERNAL_UPSTREAM": "BLOCK"})
    assert _get(arca, d, "app", f"simple/{blocked}/", Accept=JSON).status_code == 404
    refused = _pip_install(arca, d, "app", tmp_path / "b", blocked, check=False)
    assert refused.returncode != 0
    assert _versions(arca, d, "proxy", blocked) == []
    _pip_install(arca, d, "app", tmp_path / "f", free)
    assert _versions(arca, d, "proxy", free) == ["1.0"]
    c.update_package_group_origin_configuration(domain=d, packageGroup=group,
                                                restrictions={"EXTERNAL_UPSTREAM": "ALLOW"})
    wait_for(lambda: _get(arca, d, "app", f"simple/{blocked}/", Accept=JSON).status_code == 200)
    _pip_install(arca, d, "app", tmp_path / "u", blocked)
    assert _versions(arca, d, "proxy", blocked) == ["1.0"]


# ---- merge by file: one version, a wheel per platform ------------------------------------------

PLATFORMS = {"linux": "py3-none-manylinux_2_17_x86_64", "mac": "py3-none-macosx_11_0_arm64",
             "win": "py3-none-win_amd64"}


def _assets(arca, d, repo, name, version):
    return stored_assets(arca.boto(), domain=d, repository=repo, format="pypi", package=name, version=version)


def test_machines_of_other_platforms_install_a_version_another_machine_retained(arca, pub, chain, unique,
                                                                                tmp_path):
    """One version, three platform wheels and an sdist on the remote. A Linux machine (pip) pulls
    its wheel first, which retains the version; a Mac (uv) and a Windows machine (pip
    --platform) still find and install theirs, each fetched into the same retained version."""
    d = chain
    name = f"plat-{unique}"
    wheels = {k: make_wheel(pub.files, name, "1.0", tag=tag, module_source=f"PLATFORM = {k!r}\n").name
              for k, tag in PLATFORMS.items()}
    make_sdist(pub.files, name, "1.0")
    everything = sorted([*wheels.values(), sdist_filename(name, "1.0")])
    url = index_url(arca, d, "app", arca.token(d))
    module = f"plat_{unique}"

    _pip_install(arca, d, "app", tmp_path / "linux", name)
    assert (tmp_path / "linux" / module / "__init__.py").read_text() == "PLATFORM = 'linux'\n"
    assert _assets(arca, d, "proxy", name, "1.0") == [wheels["linux"]]
    # The retained version still lists every file the remote has for it.
    page = _get(arca, d, "app", f"simple/{name}/", Accept=JSON).json()
    assert sorted(f["filename"] for f in page["files"]) == everything

    run([require_tool("uv"), "pip", "install", "--no-cache", "--python", PY, "--target", str(tmp_path / "mac"),
         "--python-platform", "aarch64-apple-darwin", "--index-url", url, name], env=clean_env())
    assert (tmp_path / "mac" / module / "__init__.py").read_text() == "PLATFORM = 'mac'\n"
    run(pip_cmd(PY, "install", "--target", str(tmp_path / "win"), "--platform", "win_amd64", "--only-binary=:all:",
                "--python-version", "3.11", "--index-url", url, name), env=clean_env())
    assert (tmp_path / "win" / module / "__init__.py").read_text() == "PLATFORM = 'win'\n"

    assert _assets(arca, d, "proxy", name, "1.0") == sorted(wheels.values())
    assert _versions(arca, d, "proxy", name) == ["1.0"]
    remote = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in pub.files.iterdir()
              if p.name.startswith(module)}
    page = _get(arca, d, "app", f"simple/{name}/", Accept=JSON).json()
    assert {f["filename"]: f["hashes"]["sha256"] for f in page["files"]} == remote


def test_a_remote_file_never_joins_a_version_published_internally(arca, pub, chain, unique, tmp_path):
    """libs publishes 1.0 (a wheel) of a name the remote also has as 1.0 with an sdist: the version
    is libs's, so the remote's sdist is neither listed nor fetched, even with upstream allowed."""
    d = chain
    name = f"own-{unique}"
    make_sdist(pub.files, name, "1.0")
    twine_upload(arca.endpoint(d, "pypi", "libs"), arca.token(d), [make_wheel(tmp_path / "dist", name, "1.0")])
    arca.boto().put_package_origin_configuration(domain=d, repository="libs", format="pypi", package=name,
                                                 restrictions={"publish": "ALLOW", "upstream": "ALLOW"})
    page = _get(arca, d, "app", f"simple/{name}/", Accept=JSON).json()
    assert [f["filename"] for f in page["files"]] == [wheel_filename(name, "1.0")]
    assert _get(arca, d, "app", f"simple/{name}/{sdist_filename(name, '1.0')}").status_code == 404
    assert _versions(arca, d, "proxy", name) == []
    assert _assets(arca, d, "libs", name, "1.0") == [wheel_filename(name, "1.0")]


def _yank(filename: str, reason: str):
    """A tamper for the remote's project page: `filename` yanked with `reason` (HTML or JSON)."""
    def tamper(body: bytes) -> bytes:
        if body.lstrip().startswith(b"{"):
            doc = json.loads(body)
            for f in doc.get("files", []):
                if f.get("filename") == filename:
                    f["yanked"] = reason
            return json.dumps(doc).encode()
        return body.replace(f">{filename}</a>".encode(), f' data-yanked="{reason}">{filename}</a>'.encode())
    return tamper


def test_remote_yanks_are_kept_on_retained_files_and_follow_the_remote(arca, pub, chain, unique, tmp_path):
    d = chain
    name = f"yank-{unique}"
    make_wheel(pub.files, name, "1.0")
    w2 = make_wheel(pub.files, name, "2.0").name
    key = f"/simple/{name}/"

    def page_yanks(repo="app"):
        return {f["filename"]: f["yanked"] for f in _get(arca, d, repo, f"simple/{name}/", Accept=JSON).json()["files"]}

    pub.tamper[key] = _yank(w2, "broken build")
    try:
        _pip_install(arca, d, "app", tmp_path / "a", name)  # unpinned: the yanked 2.0 is skipped
        assert (tmp_path / "a" / f"yank_{unique}-1.0.dist-info").is_dir()
        _pip_install(arca, d, "app", tmp_path / "b", f"{name}=={2.0}")  # pinned: taken, and retained
        assert (tmp_path / "b" / f"yank_{unique}-2.0.dist-info").is_dir()
        assert _versions(arca, d, "proxy", name) == ["1.0", "2.0"]
        assert page_yanks()[w2] == "broken build"
        # The remote changes its mind: the retained file follows.
        pub.tamper[key] = _yank(w2, "security")
        assert page_yanks()[w2] == "security"
    finally:
        pub.tamper.pop(key, None)
    assert page_yanks()[w2] is False  # un-yanked on the remote
    _pip_install(arca, d, "app", tmp_path / "c", name)
    assert (tmp_path / "c" / f"yank_{unique}-2.0.dist-info").is_dir()
    pub.tamper[key] = _yank(w2, "security")
    try:
        assert page_yanks()[w2] == "security"
        # Kept in the database: once the proxy has no connection (graphs are cached for a moment,
        # so until its page is answered without asking the remote), its own page still says so.
        arca.boto().disassociate_external_connection(domain=d, repository="proxy",
                                                     externalConnection="public:pypi")

        def hosted_page():
            before = pub.count(key)
            yanks = page_yanks("proxy")
            return yanks if pub.count(key) == before else None

        assert wait_for(hosted_page)
    finally:
        pub.tamper.pop(key, None)
    before = pub.count(key)
    assert page_yanks("proxy") == {wheel_filename(name, "1.0"): False, w2: "security"}
    assert pub.count(key) == before


def test_the_root_index_lists_the_projects_of_every_repository_read_through(arca, pub, chain, unique, tmp_path):
    d = chain
    own, lib, ext = f"root-own-{unique}", f"root-lib-{unique}", f"root-ext-{unique}"
    twine_upload(arca.endpoint(d, "pypi", "app"), arca.token(d), [make_wheel(tmp_path / "a", own, "1.0")])
    twine_upload(arca.endpoint(d, "pypi", "libs"), arca.token(d), [make_wheel(tmp_path / "l", lib, "1.0")])
    make_wheel(pub.files, ext, "1.0")
    _pip_install(arca, d, "app", tmp_path / "t", ext)  # retained in proxy

    names = [p["name"] for p in _get(arca, d, "app", "simple/", Accept=JSON).json()["projects"]]
    assert {own, lib, ext} <= set(names) and len(names) == len(set(names))
    html = _get(arca, d, "app", "simple/").text
    assert all(f'href="{n}/"' in html for n in (own, lib, ext))
    # libs reads through proxy only: app's own project is not its.
    libs_names = [p["name"] for p in _get(arca, d, "libs", "simple/", Accept=JSON).json()["projects"]]
    assert lib in libs_names and ext in libs_names and own not in libs_names
