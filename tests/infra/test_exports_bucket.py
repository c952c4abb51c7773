"""The exports bucket encrypts by default with the stack's data key, and every function that writes
it may use that key: the writers (calls_export, ops_jobs) send no SSE header and rely on it."""

from __future__ import annotations

from typing import Any

EXPORT_WRITERS = {"calls_export", "ops_jobs"}


def _exports_users(synth: Any) -> dict[str, dict[str, Any]]:
    """Functions with the exports bucket in their environment, by POWERTOOLS_SERVICE_NAME."""
    out = {}
    for fn in synth.resources("AWS::Lambda::Function").values():
        env = fn["Properties"].get("Environment", {}).get("Variables", {})
        if "CALLTRACK_EXPORTS_BUCKET" in env:
            out[env["POWERTOOLS_SERVICE_NAME"]] = fn
    return out


def _exports_bucket_id(synth: Any) -> str:
    refs = {
        fn["Properties"]["Environment"]["Variables"]["CALLTRACK_EXPORTS_BUCKET"]["Ref"]
        for fn in _exports_users(synth).values()
    }
    assert len(refs) == 1, refs
    return refs.pop()


def test_the_exports_bucket_defaults_to_sse_kms_with_the_data_key(synth: Any) -> None:
    bucket = synth.template["Resources"][_exports_bucket_id(synth)]
    rules = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert len(rules) == 1
    default = rules[0]["ServerSideEncryptionByDefault"]
    assert default["SSEAlgorithm"] == "aws:kms"
    key_id = default["KMSMasterKeyID"]["Fn::GetAtt"][0]
    assert synth.template["Resources"][key_id]["Type"] == "AWS::KMS::Key"
    assert rules[0]["BucketKeyEnabled"] is True


def test_the_export_writers_may_encrypt_with_the_buckets_key(synth: Any) -> None:
    bucket = synth.template["Resources"][_exports_bucket_id(synth)]
    default = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    key_arn = default["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]
    users = _exports_users(synth)
    assert EXPORT_WRITERS <= set(users)
    policies = synth.resources("AWS::IAM::Policy").values()
    for name in EXPORT_WRITERS:
        role_id = users[name]["Properties"]["Role"]["Fn::GetAtt"][0]
        statements = [
            s
            for p in policies
            if {"Ref": role_id} in p["Properties"].get("Roles", [])
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        ]
        kms_actions = {
            a
            for s in statements
            if s["Effect"] == "Allow" and s["Resource"] == key_arn
            for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        }
        assert "kms:GenerateDataKey*" in kms_actions, name
