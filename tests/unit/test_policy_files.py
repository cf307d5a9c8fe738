"""`deployments/iam/*.json` are the code's documents, and the IAM policy linter passes them."""

from __future__ import annotations

import json
from pathlib import Path

from deployments.aws.policy_files import IAM_DIR, rendered, stale, write, write_examples
from deployments.aws.policy_lint import KEPT, lint


def test_the_committed_documents_match_the_code() -> None:
    assert stale() == [], "run: python -m deployments.aws.policy_files"
    assert sorted(path.name for path in IAM_DIR.glob("*.json")) == sorted(rendered())


def test_a_stale_or_extra_document_is_found_and_rewritten(tmp_path: Path) -> None:
    write(tmp_path)
    (tmp_path / "deployer-policy.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "left-over.json").write_text("{}\n", encoding="utf-8")
    assert stale(tmp_path) == ["deployer-policy.json", "left-over.json"]
    assert write(tmp_path) == ["deployer-policy.json", "left-over.json"]
    assert stale(tmp_path) == []
    assert not (tmp_path / "left-over.json").exists()


def test_the_linter_passes_the_documents_and_flags_a_wildcard(tmp_path: Path) -> None:
    write_examples(tmp_path)
    assert "${" not in "".join(path.read_text(encoding="utf-8") for path in tmp_path.glob("*.json"))
    found = {(item.file, item.issue) for item in lint(tmp_path)}
    assert found <= set(KEPT), found - set(KEPT)
    loose = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    (tmp_path / "loose.json").write_text(json.dumps(loose), encoding="utf-8")
    flagged = {item.issue for item in lint(tmp_path) if item.file == "loose.json"}
    assert flagged, "parliament found nothing in s3:* on *"
