"""As-deployed mode's pure parts: which (action, resource) pairs AWS authorizes for a DynamoDB
request, and how CloudFormation references in the template become local names and ARNs."""

from __future__ import annotations

import pytest

from calltrack_cli.local.as_deployed import AsDeployedError, Resolver, role_statements
from calltrack_cli.local.emulator_iam import condition_warnings, dynamodb_checks, sns_checks, ssm_checks

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/"


def checks(action: str, params: dict) -> list[tuple[str, str]]:
    return dynamodb_checks(action, params, "us-east-1", "123456789012")


def test_a_transaction_is_authorized_item_by_item_with_each_items_own_action():
    # Given a transaction that puts a call, updates a caller and checks an account
    params = {"TransactItems": [
        {"Put": {"TableName": "calltrack-calls", "Item": {}}},
        {"Update": {"TableName": "calltrack-callers", "Key": {}}},
        {"ConditionCheck": {"TableName": "calltrack-accounts", "Key": {}}},
    ]}
    # Then each item needs its own action on its own table (AWS has no "transaction" permission)
    assert checks("TransactWriteItems", params) == [
        ("PutItem", TABLE + "calltrack-calls"),
        ("UpdateItem", TABLE + "calltrack-callers"),
        ("ConditionCheckItem", TABLE + "calltrack-accounts"),
    ]


def test_a_batch_needs_the_batch_action_on_every_table_it_names():
    params = {"RequestItems": {"calltrack-numbers": {}, "calltrack-accounts": {}}}
    assert checks("BatchGetItem", params) == [
        ("BatchGetItem", TABLE + "calltrack-numbers"),
        ("BatchGetItem", TABLE + "calltrack-accounts"),
    ]


def test_a_query_on_an_index_is_checked_against_the_index_arn():
    assert checks("Query", {"TableName": "calltrack-calls", "IndexName": "by_account"}) == [
        ("Query", TABLE + "calltrack-calls/index/by_account")
    ]
    assert checks("GetItem", {"TableName": "calltrack-calls"}) == [("GetItem", TABLE + "calltrack-calls")]


TEMPLATE = {
    "Resources": {
        "CallsTable": {"Type": "AWS::DynamoDB::Table"},
        "Queue": {"Type": "AWS::SQS::Queue"},
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Environment": {"Variables": {
            "CALLTRACK_TABLE_CALLS": {"Ref": "CallsTable"},
            "CALLTRACK_RECORDING_QUEUE_URL": {"Ref": "Queue"},
        }}}},
        "Role": {"Type": "AWS::IAM::Role", "Properties": {}},
        "Policy": {"Type": "AWS::IAM::Policy", "Properties": {
            "Roles": [{"Ref": "Role"}],
            "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "dynamodb:GetItem",
                                              "Resource": {"Fn::GetAtt": ["CallsTable", "Arn"]},
                                              "Condition": {"StringEquals": {"aws:x": "y"}}}]},
        }},
        "Other": {"Type": "AWS::SQS::Queue"},
    }
}
LOCAL = {"CALLTRACK_TABLE_CALLS": "calltrack-calls",
         "CALLTRACK_RECORDING_QUEUE_URL": "http://127.0.0.1:5000/123456789012/calltrack-recording"}


def test_references_resolve_to_the_local_resources_the_variables_name():
    resolver = Resolver(TEMPLATE, LOCAL, "arn:aws:kms:us-east-1:123456789012:key/k")
    assert resolver.resolve({"Ref": "CallsTable"}) == "calltrack-calls"
    assert resolver.resolve({"Fn::Join": ["", [{"Fn::GetAtt": ["CallsTable", "Arn"]}, "/index/*"]]}) == (
        TABLE + "calltrack-calls/index/*"
    )
    assert resolver.resolve({"Fn::GetAtt": ["Queue", "Arn"]}) == (
        "arn:aws:sqs:us-east-1:123456789012:calltrack-recording"
    )
    sub = {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:x"}
    assert resolver.resolve(sub) == "arn:aws:ssm:us-east-1:x"


def test_an_environment_reference_with_no_local_resource_fails_naming_it():
    resolver = Resolver(TEMPLATE, LOCAL, "")
    with pytest.raises(AsDeployedError, match="Other"):
        resolver.resolve({"Ref": "Other"})
    # ... while in a policy it becomes a name nothing local has (the grant is inert)
    resolver.lenient = True
    assert "Other" in resolver.resolve({"Ref": "Other"})


def test_a_condition_in_a_policy_is_reported_as_not_enforced_locally():
    statements = role_statements(TEMPLATE, "Role")
    assert len(statements) == 1
    [warning] = condition_warnings("voice_webhook", statements)
    assert "voice_webhook" in warning and "Condition" in warning


class Request:
    """The two things the SSM/SNS checks read from moto's response object."""

    region, current_account = "us-east-1", "123456789012"

    def __init__(self, **params: object) -> None:
        self.params = params

    def _get_param(self, name: str) -> object:
        return self.params.get(name)


def test_ssm_reads_are_checked_against_each_parameters_arn():
    arn = "arn:aws:ssm:us-east-1:123456789012:parameter/"
    assert ssm_checks("GetParameter", Request(Name="/calltrack/twilio-auth-token")) == [
        ("GetParameter", arn + "calltrack/twilio-auth-token")
    ]
    assert ssm_checks("GetParameters", Request(Names=["/a/x", "/b/y"])) == [
        ("GetParameters", arn + "a/x"), ("GetParameters", arn + "b/y")
    ]
    assert ssm_checks("GetParametersByPath", Request(Path="/calltrack/acme")) == [
        ("GetParametersByPath", arn + "calltrack/acme")
    ]


def test_an_sns_publish_is_checked_against_its_topic():
    topic = "arn:aws:sns:us-east-1:123456789012:calltrack-ops"
    assert sns_checks("Publish", Request(TopicArn=topic)) == [("Publish", topic)]
