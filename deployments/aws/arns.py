"""ARNs of one deployment's AWS resources, and the statement shape every policy document uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deployments.aws.config import AwsConfig

POLICY_VERSION = "2012-10-17"


@dataclass(frozen=True)
class Arns:
    """The ARNs of one deployment in one partition, region and account."""

    config: AwsConfig
    partition: str
    account_id: str

    def _regional(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.config.region}:{self.account_id}:{resource}"

    @property
    def bucket(self) -> str:
        """The artifact and prediction-log bucket."""
        return f"arn:{self.partition}:s3:::{self.config.bucket}"

    def objects(self, prefix: str) -> str:
        """Every object of the bucket under a key prefix (which ends with `/`, or is empty)."""
        return f"{self.bucket}/{prefix}*"

    def log_group(self, name: str) -> list[str]:
        """A log group and its streams."""
        group = self._regional("logs", f"log-group:{name}")
        return [group, f"{group}:*"]

    @property
    def role(self) -> str:
        """The function's execution role."""
        return f"arn:{self.partition}:iam::{self.account_id}:role/{self.config.role_name}"

    @property
    def firehose_role(self) -> str:
        """The role Firehose assumes to deliver the prediction records."""
        return f"arn:{self.partition}:iam::{self.account_id}:role/{self.config.firehose_role_name}"

    @property
    def delivery_stream(self) -> str:
        """The configured Firehose delivery stream."""
        return self._regional("firehose", f"deliverystream/{self.config.firehose_stream}")

    @property
    def boundary(self) -> str:
        """The permissions boundary policy of the execution role."""
        return f"arn:{self.partition}:iam::{self.account_id}:policy/{self.config.boundary_name}"

    @property
    def function(self) -> str:
        """The function itself (unqualified)."""
        return self._regional("lambda", f"function:{self.config.function_name}")

    @property
    def layer(self) -> str:
        """The dependency layer (unversioned)."""
        return self._regional("lambda", f"layer:{self.config.layer_name}")

    def ec2(self, resource: str) -> str:
        """An EC2 resource of the account and region (`subnet/subnet-1`, `network-interface/*`)."""
        return self._regional("ec2", resource)

    def apis(self, path: str = "") -> str:
        """API Gateway's HTTP APIs of the region (`/apis`), or a path below them (`/abc123/*`)."""
        return f"arn:{self.partition}:apigateway:{self.config.region}::/apis{path}"


def statement(
    sid: str,
    actions: list[str],
    resources: str | list[str],
    *,
    effect: str = "Allow",
    condition: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One policy statement: named actions on named resources, with an optional condition."""
    item: dict[str, Any] = {"Sid": sid, "Effect": effect, "Action": actions}
    item["Resource"] = resources[0] if isinstance(resources, list) and len(resources) == 1 else resources
    if condition:
        item["Condition"] = condition
    return item


def document(*statements: dict[str, Any] | None) -> dict[str, Any]:
    """A policy document of the statements that apply (None stands for a grant a setting leaves out)."""
    return {"Version": POLICY_VERSION, "Statement": [item for item in statements if item is not None]}
