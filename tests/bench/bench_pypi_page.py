"""Benchmark (on demand, not collected): how long a large PyPI project page takes to render.

    .venv/bin/python tests/bench/bench_pypi_page.py [--versions 1000] [--files 5] [--rounds 5]

One project with VERSIONS x FILES wheels in a fresh SQLite database; each round reads the rows
(tests/test_pypi_unit.py checks that this is one query) and renders the HTML and JSON pages.
The figure moved here from that test, which asserted `elapsed < 10`: a speed is not a
behaviour, and a loaded machine should not turn a test red."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.db.models import Asset, Blob, Domain, Package, PackageVersion, Repository  # noqa: E402
from app.db.session import Database, upgrade  # noqa: E402
from app.domain.views import PackageState  # noqa: E402
from app.formats.pypi import simple  # noqa: E402
from app.services.resolve import index_files  # noqa: E402


def fill(db: Database, versions: int, files: int) -> int:
    with db.session() as s:
        d = Domain(name="acme")
        s.add(d)
        s.flush()
        r = Repository(domain_id=d.id, name="py")
        s.add(r)
        s.flush()
        p = Package(repository_id=r.id, format="pypi", namespace="", name="big", display_name="Big", attributes={})
        s.add(p)
        s.flush()
        for i in range(versions):
            v = PackageVersion(package_id=p.id, version=f"1.{i}", status="Published", revision=str(i),
                               attributes={})
            s.add(v)
            s.flush()
            for j in range(files):
                b = Blob(domain_id=d.id, sha256=f"{i:032d}{j:032d}", sha1="0" * 40, md5="0" * 32, sha512="0" * 128,
                         size=1000 + j)
                s.add(b)
                s.flush()
                s.add(Asset(package_version_id=v.id, name=f"big-1.{i}-py3{j}-none-any.whl", blob_id=b.id,
                            attributes={"requires_python": ">=3.8", "metadata_sha256": "ab" * 32}))
        return p.id


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--versions", type=int, default=1000)
    ap.add_argument("--files", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        db = Database(url)
        pid = fill(db, args.versions, args.files)
        times = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            with db.read() as s:
                rows = simple.project_rows(index_files(s, PackageState(pid, 0, None)))
            simple.render_project_html("big", rows)
            simple.render_project_json("big", rows)
            times.append(time.perf_counter() - t0)
        db.dispose()
    print(f"PyPI project page, {len(rows)} files: rows + HTML + JSON in {statistics.median(times) * 1000:.0f} ms "
          f"(median of {args.rounds}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
