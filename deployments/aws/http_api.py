"""The HTTP API in front of the `live` alias: created once, so its id and URL never change.

The API carries the project's tag from its creation and is found by that tag and its name: an
API of the same name without the tag belongs to someone else and is never adopted. Every route
requires the configured authorization (`iam`: SigV4-signed requests from
principals allowed `execute-api:Invoke`; `jwt`: a token from the configured issuer for the
configured audience; `none` only when chosen); the page's route, `GET /`, has a setting of its
own (the API's unless set), so the page can be public while `POST /predict` is not. The
`$default` stage throttles every route and writes one access-log line per request to a log
group of its own, and CORS answers browsers from the configured origins.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from deployments.aws.config import (
    PROJECT_TAG_KEY,
    AwsClients,
    DeployError,
    DeployRefusedError,
    all_items,
    missing,
)
from deployments.aws.function import live_alias
from deployments.lambda_handler.contract import (
    CORS_ALLOW_HEADERS,
    CORS_ALLOW_METHODS,
    CORS_EXPOSE_HEADERS,
    CORS_MAX_AGE_SECONDS,
    LIVE_ALIAS,
    PAGE_ROUTE,
    ROUTE_KEYS,
)

DEFAULT_STAGE = "$default"
AUTHORIZATION_TYPES = {"iam": "AWS_IAM", "jwt": "JWT", "none": "NONE"}
# One JSON object per request: who called what, the answer, and how long the function took.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "sourceIp": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "protocol": "$context.protocol",
        "responseLength": "$context.responseLength",
        "integrationLatency": "$context.integrationLatency",
        "integrationError": "$context.integrationErrorMessage",
    },
    separators=(",", ":"),
)


def find_api(aws: AwsClients) -> dict[str, Any] | None:
    """The deployment's HTTP API: the configured name and the project's tag; None before it exists.

    An API of that name without the tag is someone else's: the deploy stops before changing
    anything and names it, rather than take it over.
    """
    config = aws.config
    named = [
        api
        for api in all_items(aws.apigw, "get_apis")
        if api.get("Name") == config.api_name and api.get("ProtocolType") == "HTTP"
    ]
    ours = [api for api in named if (api.get("Tags") or {}).get(PROJECT_TAG_KEY) == config.function_name]
    if len(ours) == 1:
        return ours[0]
    if ours:
        ids = ", ".join(sorted(str(api["ApiId"]) for api in ours))
        tag = f"{PROJECT_TAG_KEY}={config.function_name}"
        msg = f"several HTTP APIs named {config.api_name} carry {tag}: {ids}; delete all but one"
        raise DeployRefusedError(msg)
    if named:
        api_id = str(named[0]["ApiId"])
        msg = (
            f"HTTP API {api_id} is named {config.api_name} but lacks the tag "
            f"{PROJECT_TAG_KEY}={config.function_name}, so it is not adopted; if it is this deployment's, "
            f"tag it (aws apigatewayv2 tag-resource --resource-arn "
            f"arn:{aws.partition}:apigateway:{config.region}::/apis/{api_id} "
            f"--tags {PROJECT_TAG_KEY}={config.function_name}), "
            "else set MLOPS_LAMBDA_FUNCTION_NAME to another name"
        )
        raise DeployRefusedError(msg)
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
            Tags=aws.config.project_tags,
        )
        aws.changed(f"api {api['ApiId']}")
    api_id = str(api["ApiId"])
    alias = live_alias(aws)
    if alias is None:
        msg = f"{aws.config.function_name} has no {LIVE_ALIAS} alias to put behind the API"
        raise DeployError(msg)
    _ensure_cors(aws, api)
    integration_id = _ensure_integration(aws, api_id, str(alias["AliasArn"]))
    routes = {item["RouteKey"]: item for item in all_items(aws.apigw, "get_routes", ApiId=api_id)}
    modes = {
        key: aws.config.page_authorization if key == PAGE_ROUTE else aws.config.api_auth for key in ROUTE_KEYS
    }
    authorization = {
        mode: _route_authorization(aws, api_id, routes, mode) for mode in sorted(set(modes.values()))
    }
    target = {"Target": f"integrations/{integration_id}"}
    wanted = {key: {**target, **authorization[mode]} for key, mode in modes.items()}
    _ensure_routes(aws, api_id, routes, wanted)
    _ensure_stage(aws, api_id)
    _ensure_permission(aws, api_id)
    return api_id, str(api["ApiEndpoint"])


def cors_configuration(aws: AwsClients) -> dict[str, Any] | None:
    """The API's CORS settings for the configured origins, or None without any."""
    origins = list(aws.config.cors_origins)
    if not origins:
        return None
    return {
        "AllowOrigins": origins,
        "AllowMethods": list(CORS_ALLOW_METHODS),
        "AllowHeaders": list(CORS_ALLOW_HEADERS),
        "ExposeHeaders": list(CORS_EXPOSE_HEADERS),
        "MaxAge": CORS_MAX_AGE_SECONDS,
    }


def _ensure_cors(aws: AwsClients, api: dict[str, Any]) -> None:
    wanted = cors_configuration(aws)
    current = api.get("CorsConfiguration") or None
    if _same_cors(wanted, current):
        return
    if wanted is None:
        aws.apigw.delete_cors_configuration(ApiId=api["ApiId"])
    else:
        aws.apigw.update_api(ApiId=api["ApiId"], CorsConfiguration=wanted)
    aws.changed("api cors")


def _same_cors(wanted: dict[str, Any] | None, current: dict[str, Any] | None) -> bool:
    """Whether the API already has these CORS settings (lists in any order, defaults AWS adds ignored)."""
    if wanted is None or current is None:
        return wanted is current

    def normal(value: Any) -> Any:
        return sorted(str(item).lower() for item in value) if isinstance(value, list) else value

    return all(normal(current.get(key)) == normal(value) for key, value in wanted.items())


def jwt_authorizer(aws: AwsClients) -> dict[str, Any]:
    """The JWT authorizer's settings: the identity provider's issuer and audience."""
    config = aws.config
    return {
        "Name": f"{config.api_name}-jwt",
        "AuthorizerType": "JWT",
        "IdentitySource": ["$request.header.Authorization"],
        "JwtConfiguration": {"Issuer": config.jwt_issuer, "Audience": list(config.jwt_audience)},
    }


def _route_authorization(
    aws: AwsClients, api_id: str, routes: dict[str, dict[str, Any]], mode: str
) -> dict[str, str]:
    """A route's authorization settings; the JWT authorizer is created once and kept current.

    The authorizer is found through the routes that use it (created in the same deploy step).
    """
    if mode != "jwt":
        return {"AuthorizationType": AUTHORIZATION_TYPES[mode]}
    wanted = jwt_authorizer(aws)
    for authorizer_id in {route.get("AuthorizerId") for route in routes.values()} - {None}:
        current = aws.apigw.get_authorizer(ApiId=api_id, AuthorizerId=authorizer_id)
        if current.get("Name") == wanted["Name"]:
            if _differs(current, wanted):
                aws.apigw.update_authorizer(ApiId=api_id, AuthorizerId=authorizer_id, **wanted)
                aws.changed(f"authorizer {authorizer_id}")
            return {"AuthorizationType": "JWT", "AuthorizerId": str(authorizer_id)}
    created = aws.apigw.create_authorizer(ApiId=api_id, **wanted)
    aws.changed(f"authorizer {created['AuthorizerId']}")
    return {"AuthorizationType": "JWT", "AuthorizerId": str(created["AuthorizerId"])}


def _differs(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether any wanted setting has another value on the resource as AWS returns it."""
    return any(current.get(key) != value for key, value in wanted.items())


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


def _ensure_routes(
    aws: AwsClients, api_id: str, routes: dict[str, dict[str, Any]], wanted: dict[str, dict[str, str]]
) -> None:
    """Each route with its target and authorization."""
    for route_key, settings in wanted.items():
        route = routes.get(route_key)
        if route is None:
            aws.apigw.create_route(ApiId=api_id, RouteKey=route_key, **settings)
            aws.changed(f"route {route_key}")
            continue
        if _differs(route, settings):
            aws.apigw.update_route(ApiId=api_id, RouteId=route["RouteId"], **settings)
            aws.changed(f"route {route_key}")


def route_settings(aws: AwsClients) -> dict[str, Any]:
    """The stage's throttling, applied to every route."""
    return {
        "ThrottlingRateLimit": float(aws.config.throttle_rate),
        "ThrottlingBurstLimit": int(aws.config.throttle_burst),
    }


def access_log_settings(aws: AwsClients) -> dict[str, str]:
    """Where and how the stage writes its access logs: its own log group, one JSON line a request."""
    group = aws.config.access_log_group
    arn = f"arn:{aws.partition}:logs:{aws.config.region}:{aws.account_id}:log-group:{group}"
    return {"DestinationArn": arn, "Format": ACCESS_LOG_FORMAT}


def _ensure_stage(aws: AwsClients, api_id: str) -> None:
    stages = {item["StageName"]: item for item in all_items(aws.apigw, "get_stages", ApiId=api_id)}
    stage = stages.get(DEFAULT_STAGE)
    throttling, access_logs = route_settings(aws), access_log_settings(aws)
    wanted = {"AutoDeploy": True, "DefaultRouteSettings": throttling, "AccessLogSettings": access_logs}
    if stage is None:
        aws.apigw.create_stage(ApiId=api_id, StageName=DEFAULT_STAGE, **wanted)
        aws.changed(f"stage {DEFAULT_STAGE}")
        return
    if (
        not stage.get("AutoDeploy")
        or _differs(stage.get("DefaultRouteSettings") or {}, throttling)
        or _differs(stage.get("AccessLogSettings") or {}, access_logs)
    ):
        aws.apigw.update_stage(ApiId=api_id, StageName=DEFAULT_STAGE, **wanted)
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
