"""Reserved concurrency of the function and provisioned concurrency of its `live` alias."""

from __future__ import annotations

from botocore.exceptions import ClientError

from deployments.aws.config import AwsClients, missing
from deployments.lambda_handler.contract import LIVE_ALIAS


def ensure_concurrency(aws: AwsClients) -> None:
    """Apply both settings when they differ from what the function has.

    Reserved concurrency unset means none (a reservation made earlier is removed).
    Provisioned concurrency unset leaves the alias as it is; 0 removes it.
    """
    _ensure_reserved(aws)
    if aws.config.provisioned_concurrency is not None:
        _ensure_provisioned(aws, aws.config.provisioned_concurrency)


def _ensure_reserved(aws: AwsClients) -> None:
    name = aws.config.function_name
    wanted = aws.config.reserved_concurrency
    current = aws.lambda_.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
    if current == wanted:
        return
    if wanted is None:
        aws.lambda_.delete_function_concurrency(FunctionName=name)
    else:
        aws.lambda_.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=wanted)
    aws.changed(f"reserved concurrency {wanted}")


def _ensure_provisioned(aws: AwsClients, wanted: int) -> None:
    name = aws.config.function_name
    try:
        current = aws.lambda_.get_provisioned_concurrency_config(FunctionName=name, Qualifier=LIVE_ALIAS)
        requested = current.get("RequestedProvisionedConcurrentExecutions")
    except ClientError as error:
        if not missing(error, "ProvisionedConcurrencyConfigNotFoundException", "ResourceNotFoundException"):
            raise
        requested = None
    if requested == (wanted or None):
        return
    if wanted == 0:
        aws.lambda_.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=LIVE_ALIAS)
    else:
        aws.lambda_.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=LIVE_ALIAS, ProvisionedConcurrentExecutions=wanted
        )
    aws.changed(f"provisioned concurrency {wanted} on {LIVE_ALIAS}")
