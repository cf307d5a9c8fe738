"""The README's table of deployment parameters is the flows' real signatures."""

from __future__ import annotations

import inspect
import re

import yaml

from flows.batch_predict import batch_predict
from flows.deploy import deploy_model
from flows.monitor import monitor_model
from flows.training import train_model
from tests.conftest import PROJECT_ROOT

ROW = re.compile(r"^\| `(?P<flow>[a-z-]+)/default` \| `(?P<parameter>\w+)` \|", re.MULTILINE)


def test_readme_lists_every_parameter_of_every_deployment() -> None:
    listed: dict[str, list[str]] = {}
    for match in ROW.finditer((PROJECT_ROOT / "README.md").read_text(encoding="utf-8")):
        listed.setdefault(match["flow"], []).append(match["parameter"])
    flows = {flow.name: list(inspect.signature(flow.fn).parameters) for flow in (
        train_model, deploy_model, monitor_model, batch_predict
    )}  # fmt: skip
    assert listed == flows


def test_prefect_yaml_deploys_those_flows() -> None:
    config = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    entrypoints = {item["entrypoint"] for item in config["deployments"]}
    assert entrypoints == {
        "flows.training.train_model",
        "flows.deploy.deploy_model",
        "flows.monitor.monitor_model",
        "flows.batch_predict.batch_predict",
    }
