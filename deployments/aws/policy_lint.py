"""Lint every policy document with parliament (`make lint`): `python -m deployments.aws.policy_lint`.

The documents are those of `deployments/iam/`, filled with example values (a linter cannot
read a `${Partition}` ARN). Trust policies are left out: they have no Resource by design,
which parliament reads as a malformed identity policy. A finding fails the lint unless it is
one of `KEPT` below, each with its reason. parliament comes with the dev dependencies.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from deployments.aws.policy_files import write_examples

# (file, parliament issue) -> why the finding stays.
KEPT = {
    ("lambda-execution-policy.json", "RESOURCE_MISMATCH"): (
        "DeleteNetworkInterface and the address calls name arn:<partition>:ec2:<region>:<account>:*/*, "
        "as Lambda's guide asks; the ec2:Subnet condition keeps real interfaces to the function's subnets"
    ),
    ("lambda-permissions-boundary.json", "RESOURCE_MISMATCH"): "the same statement as the execution policy",
    ("deployer-policy.json", "RESOURCE_POLICY_PRIVILEGE_ESCALATION"): (
        "the deployer writes the bucket's TLS-only policy and lifecycle rule; IAM cannot limit what they say"
    ),
}


@dataclass(frozen=True)
class Finding:
    """One parliament finding in one document."""

    file: str
    issue: str
    detail: str

    def __str__(self) -> str:
        return f"{self.file}: {self.issue}: {self.detail}"


def lint(folder: Path) -> list[Finding]:
    """Every finding of parliament in the policy documents of a folder (trust policies left out)."""
    from parliament import analyze_policy_string, enhance_finding

    found = []
    for path in sorted(folder.glob("*.json")):
        if path.name.endswith("trust-policy.json"):
            continue
        policy = analyze_policy_string(path.read_text(encoding="utf-8"), str(path))
        for finding in policy.findings:
            enhance_finding(finding)
            found.append(Finding(path.name, finding.issue, json.dumps(finding.detail, default=str)))
    return found


def main() -> None:
    """Lint the example documents; exit 1 naming every finding that is not kept."""
    with tempfile.TemporaryDirectory() as folder:
        write_examples(Path(folder))
        findings = [item for item in lint(Path(folder)) if (item.file, item.issue) not in KEPT]
    for finding in findings:
        print(finding, file=sys.stderr)  # noqa: T201 - the lint's report
    if findings:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
