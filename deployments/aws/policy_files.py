"""`deployments/iam/*.json`: every policy document rendered with `${Name}` placeholders.

They are written from the code (`python -m deployments.aws.policy_files`), never by hand, and
a test checks they still match it. Every optional grant is on (a KMS key, X-Ray, Firehose, a
VPC), so each statement the code can produce is there to read. `make lint` runs the IAM policy
linter on the same documents filled with example values (`--example DIR`), since a linter
cannot read a `${Partition}` ARN. `python -m deployments.aws.policy_cli` renders them for real
settings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from deployments.aws.bucket import bucket_policy
from deployments.aws.config import AwsConfig
from deployments.aws.deployer_policy import deployer_policy
from deployments.aws.execution_policies import boundary_policy, execution_policy, trust_policy
from deployments.aws.firehose_policies import delivery_policy, delivery_trust_policy
from deployments.aws.policies import github_trust_policy

IAM_DIR = Path(__file__).resolve().parent.parent / "iam"
PARTITION, ACCOUNT = "${Partition}", "${AccountId}"
EVERY_OPTION = AwsConfig(
    region="${Region}",
    bucket="${Bucket}",
    prefix="${Prefix}",
    function_name="${FunctionName}",
    firehose_stream="${FirehoseStream}",
    tracing="Active",
    kms_key_arn="${KmsKeyArn}",
    subnet_ids=("${SubnetId}",),
    security_group_ids=("${SecurityGroupId}",),
)
ENVIRONMENT = {"STORAGE_URL": "s3://${Bucket}/${Prefix}", "FIREHOSE_STREAM": "${FirehoseStream}"}
EXAMPLE_VALUES = {
    "${Partition}": "aws",
    "${AccountId}": "123456789012",
    "${Region}": "eu-west-1",
    "${Bucket}": "example-ml-bucket",
    "${Prefix}": "prod",
    "${FunctionName}": "ames-price-serving",
    "${FirehoseStream}": "ames-predictions",
    "${KmsKeyArn}": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "${SubnetId}": "subnet-0123456789abcdef0",
    "${SecurityGroupId}": "sg-0123456789abcdef0",
    "${Repository}": "example/loopml",
    "${Environment}": "production",
}


def documents() -> dict[str, dict[str, Any]]:
    """Each file name with the document it holds."""
    config = EVERY_OPTION
    return {
        "deployer-policy.json": deployer_policy(config, PARTITION, ACCOUNT),
        "lambda-execution-policy.json": execution_policy(config, PARTITION, ACCOUNT, ENVIRONMENT),
        "lambda-permissions-boundary.json": boundary_policy(config, PARTITION, ACCOUNT, ENVIRONMENT),
        "lambda-trust-policy.json": trust_policy(ACCOUNT),
        "bucket-policy.json": bucket_policy(config, PARTITION),
        "firehose-delivery-policy.json": delivery_policy(config, PARTITION),
        "firehose-trust-policy.json": delivery_trust_policy(ACCOUNT),
        "github-oidc-trust-policy.json": github_trust_policy(
            PARTITION, ACCOUNT, "${Repository}", "${Environment}"
        ),
    }


def rendered() -> dict[str, str]:
    """Each file name with its text, as written."""
    return {name: json.dumps(document, indent=2) + "\n" for name, document in documents().items()}


def stale(folder: Path = IAM_DIR) -> list[str]:
    """The files that are missing, differ from the code, or are no longer produced by it."""
    wanted = rendered()
    present = {path.name for path in folder.glob("*.json")}
    differing = [
        name
        for name, text in wanted.items()
        if not (folder / name).is_file() or (folder / name).read_text(encoding="utf-8") != text
    ]
    return sorted({*differing, *(present - set(wanted))})


def write(folder: Path = IAM_DIR) -> list[str]:
    """Write every file (and remove ones the code no longer produces); the names that changed."""
    changed = stale(folder)
    for path in folder.glob("*.json"):
        if path.name not in rendered():
            path.unlink()
    for name, text in rendered().items():
        (folder / name).write_text(text, encoding="utf-8")
    return changed


def write_examples(folder: Path) -> None:
    """Write every document with example values in place of its placeholders (for a linter)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        filled = text
        for placeholder, value in EXAMPLE_VALUES.items():
            filled = filled.replace(placeholder, value)
        (folder / name).write_text(filled, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    """Write the files, or with `--check` exit 1 naming those that are out of date."""
    parser = argparse.ArgumentParser(description="Write deployments/iam/*.json from the code.")
    parser.add_argument("--check", action="store_true", help="only report files that differ")
    parser.add_argument("--example", type=Path, metavar="DIR", help="write them with example values to DIR")
    args = parser.parse_args(argv)
    if args.example:
        write_examples(args.example)
        return
    if args.check:
        out_of_date = stale()
        if out_of_date:
            names = ", ".join(out_of_date)
            msg = f"deployments/iam/ is out of date ({names}): run python -m deployments.aws.policy_files"
            raise SystemExit(msg)
        return
    for name in write():
        print(f"wrote deployments/iam/{name}")  # noqa: T201 - what the command did


if __name__ == "__main__":
    main()
