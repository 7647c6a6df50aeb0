"""ARCA_S3_PRESIGNED_DOWNLOADS=1: downloads redirect to a presigned URL of the S3 store (moto here),
so the bytes leave the node's data path; the client following the redirect gets the same bytes."""

from __future__ import annotations

import os

import httpx

from tests.support.server import shared_s3_env, start_server


def test_maven_download_redirects_to_presigned_url(tmp_path):
    srv = start_server(tmp_path / "p", env={**shared_s3_env(), "ARCA_S3_PRESIGNED_DOWNLOADS": "1"})
    try:
        srv.create_repo("pre", "libs")
        token = srv.token("pre")
        url = srv.endpoint("pre", "maven", "libs") + "com/acme/big/1.0/big-1.0.jar"
        body = os.urandom(600 * 1024)  # larger than what the Maven module answers from memory
        assert httpx.put(url, content=body, auth=("aws", token)).status_code == 201
        srv.boto().update_package_versions_status(domain="pre", repository="libs", format="maven",
                                                  namespace="com.acme", package="big", versions=["1.0"],
                                                  targetStatus="Published")
        first = httpx.get(url, auth=("aws", token))
        assert first.status_code == 302
        location = first.headers["location"]
        assert location.startswith(srv.env["ARCA_S3_ENDPOINT_URL"]) and "Signature" in location
        assert httpx.get(location).content == body
        # checksums still come from the node
        assert httpx.get(url + ".sha1", auth=("aws", token)).status_code == 200
    finally:
        srv.stop()
