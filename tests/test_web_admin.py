"""Issue 15 item 4: the console's Administration area, driven in a real headless Chromium: create a
user, create an access key (its secret shown once, and the key then signs requests), put an inline
policy, make a group with a policy and a member, deactivate and delete the key, delete the user;
and refused for a user who is no administrator (403, nothing changed). Screenshots of each page."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.web_support import (Console, browser, browser_login, console_user, csrf_of, shot,  # noqa: F401
                               signed_in)


def iam(server):
    k = server.access_key
    return boto3.client("iam", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=k["AccessKeyId"],
                        aws_secret_access_key=k["SecretAccessKey"], config=Config(retries={"max_attempts": 1}))


def test_administration_area_in_chromium(server, browser, shot, unique):  # noqa: F811
    admin, name, group = f"root{unique}", f"web{unique}", f"webgroup{unique}"
    console_user(server, admin, admin=True)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(10_000)
    browser_login(page, server, admin)
    page.click("a.adminlink")
    page.wait_for_selector("h1:has-text('Administration')")
    shot(page, "admin-01-users")

    page.fill("input[name=name]", name)
    page.click("button:has-text('Create user')")
    page.wait_for_selector(f"h1:has-text('{name}')")
    assert iam(server).get_user(UserName=name)["User"]["UserName"] == name

    page.click("button:has-text('Create access key')")
    page.wait_for_selector("h1:has-text('New access key')")
    key_id, secret = page.inner_text("#access-key-id"), page.inner_text("#secret-access-key")
    assert "only time" in page.inner_text("main")
    shot(page, "admin-02-new-key-secret-once")
    sts = boto3.client("sts", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=key_id,
                       aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))
    assert sts.get_caller_identity()["Arn"].endswith(f":user/{name}")
    page.click("a:has-text('Done')")
    page.wait_for_selector("table.keys")
    assert secret not in page.content()  # never shown again

    page.fill("form.stack input[name=policy_name]", "read")
    page.click("button:has-text('Save policy')")
    page.wait_for_selector("h3:has-text('read')")
    assert iam(server).list_user_policies(UserName=name)["PolicyNames"] == ["read"]
    shot(page, "admin-03-user")

    page.click("a:has-text('Groups')")
    page.fill("input[name=name]", group)
    page.click("button:has-text('Create group')")
    page.wait_for_selector(f"h1:has-text('{group}')")
    page.fill("input[name=user]", name)
    page.click("button:has-text('Add member')")
    page.wait_for_selector(f"ul.plain a:has-text('{name}')")
    page.fill("form.stack input[name=policy_name]", "group-read")
    page.click("button:has-text('Save policy')")
    page.wait_for_selector("h3:has-text('group-read')")
    shot(page, "admin-04-group")
    assert [u["UserName"] for u in iam(server).get_group(GroupName=group)["Users"]] == [name]
    assert iam(server).list_group_policies(GroupName=group)["PolicyNames"] == ["group-read"]

    # a malformed policy is refused with its reason, and nothing changes
    page.fill("form.stack input[name=policy_name]", "bad")
    page.fill("textarea[name=document]", json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "codeartifact:*", "Resource": "*"}]}))
    page.click("button:has-text('Save policy')")
    page.wait_for_selector("p.flash.err")
    assert "has no Principal" in page.inner_text("p.flash.err")
    assert iam(server).list_group_policies(GroupName=group)["PolicyNames"] == ["group-read"]

    page.goto(server.url + f"/ui/admin/users/{name}")
    page.click("button:has-text('Deactivate')")
    page.wait_for_selector("p.flash.ok")
    with pytest.raises(ClientError):
        sts.get_caller_identity()
    page.click("button:has-text('Delete'):not(:has-text('policy')):not(:has-text('user'))")
    page.wait_for_selector("text=No access keys.")
    page.click("a:has-text('Roles and OIDC providers')")
    page.wait_for_selector("h2:has-text('OIDC providers')")
    shot(page, "admin-05-roles")
    page.goto(server.url + f"/ui/admin/users/{name}")
    page.fill("input[name=confirm]", name)
    page.click("button:has-text('Delete user')")
    page.wait_for_selector("h1:has-text('Administration')")
    assert name not in [u["UserName"] for u in iam(server).list_users()["Users"]]
    page.close()


def test_administration_is_refused_to_other_users(server, unique):
    name = f"plain{unique}"
    console_user(server, name)
    c = signed_in(server, name)
    try:
        assert "Administration" not in c.get("/ui/").text
        assert c.get("/ui/admin").status_code == 403
        before = [u["UserName"] for u in iam(server).list_users()["Users"]]
        r = c.post("/ui/admin", {"name": f"sneaky{unique}"}, csrf=c.csrf("/ui/"))
        assert r.status_code == 403 and "iam:CreateUser" in r.text
        r = c.post(f"/ui/admin/users/{name}/action", {"op": "create-key"}, csrf=c.csrf("/ui/"))
        assert r.status_code == 403
        assert [u["UserName"] for u in iam(server).list_users()["Users"]] == before
        assert len(iam(server).list_access_keys(UserName=name)["AccessKeyMetadata"]) == 1
        # and without the CSRF token, not even an administrator's session changes anything
        admin = f"boss{unique}"
        console_user(server, admin, admin=True)
        a = signed_in(server, admin)
        assert a.post("/ui/admin", {"name": f"forged{unique}"}).status_code == 403
        assert f"forged{unique}" not in [u["UserName"] for u in iam(server).list_users()["Users"]]
        a.close()
    finally:
        c.close()
