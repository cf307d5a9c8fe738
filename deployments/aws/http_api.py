"""The HTTP API in front of the `live` alias: created once, so its id and URL never change."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from deployments.aws.config import AwsClients, DeployError, all_items, missing
from deployments.aws.function import live_alias
from deployments.lambda_handler.contract import LIVE_ALIAS

ROUTE_KEYS = ("POST /predict", "GET /schema", "GET /health")
DEFAULT_STAGE = "$default"


def find_api(aws: AwsClients) -> dict[str, Any] | None:
    """The HTTP API with the configured name, or None."""
    for api in all_items(aws.apigw, "get_apis"):
        if api.get("Name") == aws.config.api_name and api.get("ProtocolType") == "HTTP":
            return api
    return None


def api_endpoint(aws: AwsClients) -> str:
    """The HTTP API's URL, or an empty string before the first deploy created it."""
    api = find_api(aws)
    return str(api["ApiEndpoint"]) if api else ""


def ensure_api(aws: AwsClients) -> tuple[str, str]:
    """The HTTP API in front of the `live` alias, created once; its id and endpoint URL."""
    api = find_api(aws)
    if api is None:
        api = aws.apigw.create_api(
            Name=aws.config.api_name,
            ProtocolType="HTTP",
            Description=f"Predictions of the {aws.config.function_name} Lambda function",
        )
        aws.changed(f"api {api['ApiId']}")
    api_id = str(api["ApiId"])
    alias = live_alias(aws)
    if alias is None:
        msg = f"{aws.config.function_name} has no {LIVE_ALIAS} alias to put behind the API"
        raise DeployError(msg)
    integration_id = _ensure_integration(aws, api_id, str(alias["AliasArn"]))
    _ensure_routes(aws, api_id, f"integrations/{integration_id}")
    _ensure_stage(aws, api_id)
    _ensure_permission(aws, api_id)
    return api_id, str(api["ApiEndpoint"])


def _ensure_integration(aws: AwsClients, api_id: str, alias_arn: str) -> str:
    integrations = all_items(aws.apigw, "get_integrations", ApiId=api_id)
    proxies = [item for item in integrations if item.get("IntegrationType") == "AWS_PROXY"]
    settings = {"IntegrationUri": alias_arn, "PayloadFormatVersion": "2.0"}
    for item in proxies:
        if item.get("IntegrationUri") == alias_arn and item.get("PayloadFormatVersion") == "2.0":
            return str(item["IntegrationId"])
    if proxies:  # ours, pointing elsewhere (a renamed function): repoint it, keep its id
        integration_id = str(proxies[0]["IntegrationId"])
        aws.apigw.update_integration(ApiId=api_id, IntegrationId=integration_id, **settings)
        aws.changed(f"integration {integration_id}")
        return integration_id
    created = aws.apigw.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationMethod="POST", **settings
    )
    aws.changed(f"integration {created['IntegrationId']}")
    return str(created["IntegrationId"])


def _ensure_routes(aws: AwsClients, api_id: str, target: str) -> None:
    routes = {item["RouteKey"]: item for item in all_items(aws.apigw, "get_routes", ApiId=api_id)}
    for route_key in ROUTE_KEYS:
        route = routes.get(route_key)
        if route is None:
            aws.apigw.create_route(ApiId=api_id, RouteKey=route_key, Target=target)
            aws.changed(f"route {route_key}")
        elif route.get("Target") != target:
            aws.apigw.update_route(ApiId=api_id, RouteId=route["RouteId"], Target=target)
            aws.changed(f"route {route_key}")


def _ensure_stage(aws: AwsClients, api_id: str) -> None:
    stages = {item["StageName"]: item for item in all_items(aws.apigw, "get_stages", ApiId=api_id)}
    stage = stages.get(DEFAULT_STAGE)
    if stage is None:
        aws.apigw.create_stage(ApiId=api_id, StageName=DEFAULT_STAGE, AutoDeploy=True)
        aws.changed(f"stage {DEFAULT_STAGE}")
    elif not stage.get("AutoDeploy"):
        aws.apigw.update_stage(ApiId=api_id, StageName=DEFAULT_STAGE, AutoDeploy=True)
        aws.changed(f"stage {DEFAULT_STAGE}")


def _ensure_permission(aws: AwsClients, api_id: str) -> None:
    """Let this API (and only it) invoke the alias."""
    statement_id = f"apigateway-{api_id}"
    if statement_id in _alias_policy_ids(aws):
        return
    config = aws.config
    source_arn = f"arn:{aws.partition}:execute-api:{config.region}:{aws.account_id}:{api_id}/*"
    try:
        aws.lambda_.add_permission(
            FunctionName=config.function_name,
            Qualifier=LIVE_ALIAS,
            StatementId=statement_id,
            Action="lambda:InvokeFunction",
            Principal="apigateway.amazonaws.com",
            SourceArn=source_arn,
        )
        aws.changed(f"permission {statement_id}")
    except ClientError as error:
        if not missing(error, "ResourceConflictException"):  # already there
            raise


def _alias_policy_ids(aws: AwsClients) -> set[str]:
    try:
        policy = aws.lambda_.get_policy(FunctionName=aws.config.function_name, Qualifier=LIVE_ALIAS)
    except ClientError as error:
        if not missing(error, "ResourceNotFoundException"):
            raise
        return set()
    return {statement.get("Sid", "") for statement in json.loads(policy["Policy"]).get("Statement", [])}
