"""The local runtime's in-process functions share botocore's parsed data
(``calltrack_cli.local.invoker.share_botocore_data``): pynamodb makes a botocore session per
thread, and the local runtime runs each invocation on the thread of its request or poll."""

from __future__ import annotations

import threading

import boto3
import botocore.session

from calltrack_cli.local.invoker import Invoker
from infra.wiring import WIRING


def _session_on_a_new_thread() -> botocore.session.Session:
    made: list[botocore.session.Session] = []
    thread = threading.Thread(target=lambda: made.append(botocore.session.get_session()))
    thread.start()
    thread.join()
    return made[0]


def test_sessions_made_on_different_threads_read_one_loader_and_parse_a_model_once():
    # Given the local runtime's invoker
    Invoker(WIRING)
    # When two threads each make a botocore session (as pynamodb does) and load DynamoDB's model
    first, second = _session_on_a_new_thread(), _session_on_a_new_thread()
    model = first.get_service_model("dynamodb")
    # Then both read the same loader, and the second gets the model the first parsed
    assert first.get_component("data_loader") is second.get_component("data_loader")
    assert first.get_component("data_loader").load_service_model("dynamodb", "service-2") is (
        second.get_component("data_loader").load_service_model("dynamodb", "service-2")
    )
    assert model.service_name == "dynamodb"
    # And the sessions stay their own
    assert first is not second


def test_boto3_sessions_do_not_grow_the_shared_loaders_search_paths():
    # Given the local runtime's invoker and one boto3 session
    Invoker(WIRING)
    boto3.session.Session(region_name="ap-northeast-1")
    paths = list(botocore.session.get_session().get_component("data_loader").search_paths)
    # When many more boto3 sessions are made (each adds boto3's data folder to its loader)
    for _ in range(50):
        boto3.session.Session(region_name="ap-northeast-1")
    # Then the shared loader still searches each folder once
    after = botocore.session.get_session().get_component("data_loader").search_paths
    assert list(after) == paths
    assert len(set(after)) == len(after)
