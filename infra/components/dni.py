"""DNI: the script URL a website embeds. Routes and the lease function come from the wiring."""

from __future__ import annotations

from aws_cdk import CfnOutput
from constructs import Construct


class Dni(Construct):
    def __init__(self, scope: Construct, id: str, *, public_url: str) -> None:
        super().__init__(scope, id)
        CfnOutput(
            self,
            "DniScriptUrl",
            value=f"{public_url}/dni.js",
            description='<script src="..." data-account="ACCOUNT" async></script> on the site',
        )
