"""One wiring declaration: a route added in infra/wiring.py's WIRING is served by the local gateway.

(The infra tests show the same route in the synthesized CloudFormation template.)
"""

from __future__ import annotations

import dataclasses

import requests

from calltrack_cli.local.gateway import LocalGateway
from infra.wiring import WIRING, LambdaFunction, Route

ECHO = LambdaFunction("echo_test", "support", "tests.support.echo_handler.handler", description="test only")
EXTRA_ROUTE = Route("GET", "/v1/_echo/{thing}", "echo_test", "public")


def test_a_route_added_to_the_wiring_is_served_locally():
    # Given the real wiring plus one more function and route, declared nowhere else
    wiring = dataclasses.replace(
        WIRING, functions=WIRING.functions + (ECHO,), routes=WIRING.routes + (EXTRA_ROUTE,)
    )
    gateway = LocalGateway(wiring=wiring)
    gateway.start()
    try:
        # When the new path is requested over HTTP
        resp = requests.get(f"{gateway.url}/v1/_echo/hello?x=1", timeout=10)
        # Then the gateway routed it to the new handler with the v2.0 event for that route
        assert resp.status_code == 200
        assert resp.headers["x-handler"] == "echo"
        event = resp.json()["event"]
        assert event["routeKey"] == "GET /v1/_echo/{thing}"
        assert event["pathParameters"] == {"thing": "hello"}
        assert event["queryStringParameters"] == {"x": "1"}
        # And without the extra route the same path is API Gateway's 404
        plain = LocalGateway(wiring=WIRING, bind=False)
        assert plain.dispatch("GET", "/v1/_echo/hello", [], b"", "127.0.0.1").status == 404
    finally:
        gateway.stop()


def test_every_wired_route_names_a_declared_function_with_an_importable_handler_path():
    names = {fn.name for fn in WIRING.functions}
    for route in WIRING.routes:
        assert route.function in names, route
    for fn in WIRING.functions:
        module, _, attr = fn.handler.rpartition(".")
        assert module.split(".")[0] == fn.folder, fn
        assert attr, fn
    keys = [(r.method, r.path) for r in WIRING.routes]
    assert len(keys) == len(set(keys)), "duplicate route"
    assert all(not r.path.startswith("/_local") and r.path != "/health" for r in WIRING.routes)
