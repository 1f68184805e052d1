"""Bucket policy parsing and evaluation (gateway/bucketpolicy.py): pure functions."""

import json

import pytest

from gateway.bucketpolicy import (
    allows_anonymous_read,
    evaluate,
    object_arn,
    parse_policy,
    public_read_policy,
)
from gateway.errors import S3Error


def policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(resource: object, action: object = "s3:GetObject", principal: object = "*",
          effect: str = "Allow") -> dict:
    return {"Effect": effect, "Principal": principal, "Action": action, "Resource": resource}


def test_public_prefix_allows_only_inside_the_prefix() -> None:
    text = policy(allow("arn:aws:s3:::media/pub/*"))
    assert allows_anonymous_read(text, "media", "pub/a.png")
    assert allows_anonymous_read(text, "media", "pub/deep/b.wav")
    assert not allows_anonymous_read(text, "media", "private/a.png")
    assert not allows_anonymous_read(text, "media", "pub")  # the prefix needs its '/'
    assert not allows_anonymous_read("", "media", "pub/a.png")


def test_explicit_deny_wins_over_allow() -> None:
    text = policy(allow("arn:aws:s3:::media/*"),
                  allow("arn:aws:s3:::media/pub/secret*", effect="Deny"))
    assert allows_anonymous_read(text, "media", "pub/a.png")
    assert not allows_anonymous_read(text, "media", "pub/secret.png")
    statements = parse_policy(text, "media")
    assert evaluate(statements, "s3:GetObject", object_arn("media", "pub/secret")) == "Deny"
    assert evaluate(statements, "s3:PutObject", object_arn("media", "pub/a")) is None


@pytest.mark.parametrize("action", ["s3:*", "*", "S3:getobject", ["s3:ListBucket", "s3:Get*"],
                                    "s3:GetObj?ct"])
def test_action_forms_and_wildcards(action: object) -> None:
    assert allows_anonymous_read(policy(allow("arn:aws:s3:::m/*", action)), "m", "k")


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}, {"AWS": ["*"]}])
def test_principal_forms(principal: object) -> None:
    assert allows_anonymous_read(policy(allow("arn:aws:s3:::m/*", principal=principal)), "m", "k")


def test_question_mark_matches_exactly_one_character() -> None:
    text = policy(allow("arn:aws:s3:::m/img?.png"))
    assert allows_anonymous_read(text, "m", "img1.png")
    assert not allows_anonymous_read(text, "m", "img12.png")


def test_single_statement_object_and_resource_list() -> None:
    text = json.dumps({"Statement": allow(["arn:aws:s3:::m/a/*", "arn:aws:s3:::m/b/*"])})
    assert allows_anonymous_read(text, "m", "b/x")
    assert not allows_anonymous_read(text, "m", "c/x")


@pytest.mark.parametrize("text", [
    "", "not json", "[]", '{"Statement": []}', "{}",
    policy(allow("arn:aws:s3:::other/*")),  # names another bucket
    policy(allow("media/*")),  # not an ARN
    policy(allow("arn:aws:s3:::m/*", action="GetObject")),
    policy(allow("arn:aws:s3:::m/*", principal={"AWS": "arn:aws:iam::123:root"})),
    policy(allow("arn:aws:s3:::m/*", effect="Maybe")),
    policy({**allow("arn:aws:s3:::m/*"), "Condition": {"IpAddress": {}}}),
    policy({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}),
    json.dumps({"Version": "2099-01-01", "Statement": [allow("arn:aws:s3:::m/*")]}),
])
def test_unsupported_or_bad_documents_are_malformed_policy(text: str) -> None:
    with pytest.raises(S3Error) as err:
        parse_policy(text, "m")
    assert err.value.code == "MalformedPolicy" and err.value.status == 400


def test_public_switch_adds_and_removes_prefixes_keeping_other_statements() -> None:
    mine = {"Sid": "Mine", **allow("arn:aws:s3:::m/x*", effect="Deny")}
    start = policy(mine)
    opened = public_read_policy(start, "m", "pub/", True)
    opened = public_read_policy(opened, "m", "img/", True)
    assert public_read_policy(opened, "m", "img/", True) == opened  # idempotent
    assert allows_anonymous_read(opened, "m", "pub/a") and allows_anonymous_read(opened, "m",
                                                                                 "img/b")
    assert mine in json.loads(opened)["Statement"]
    closed = public_read_policy(opened, "m", "pub/", False)
    assert not allows_anonymous_read(closed, "m", "pub/a")
    assert allows_anonymous_read(closed, "m", "img/b")
    assert json.loads(public_read_policy(closed, "m", "", False))["Statement"] == [mine]
    assert public_read_policy(public_read_policy("", "m", "", True), "m", "", False) == ""
    assert allows_anonymous_read(public_read_policy("", "m", "", True), "m", "any/key")
