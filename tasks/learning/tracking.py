"""Record a training run in MLflow: candidates, data input, decision, model and bundle."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import mlflow
import pandas as pd
import skops.io
from mlflow.data.pandas_dataset import from_pandas
from mlflow.models import infer_signature

from deployments.lambda_handler.contract import CHAMPION_ALIAS
from tasks.learning.bundle import (
    BundleMetadata,
    ModelSchema,
    MonitoringBaseline,
    sha256_hex,
    write_bundle,
)
from tasks.learning.candidate_selection import DeployableModel, FittedCandidate
from tasks.learning.data_snapshot import Snapshot
from tasks.learning.families import all_families
from tasks.learning.promotion import PromotionDecision
from tasks.registry.model_registry import BUNDLE_PATH, ensure_experiment, mlflow_client

# Pinned so MLflow does not resolve requirements by importing the model (saves seconds per run).
MODEL_REQUIREMENTS = ["scikit-learn==1.9.1", "numpy", "pandas", "skops"]
# Type-name prefixes a saved model may hold: scikit-learn's, and those its family declares.
TRUSTED_TYPE_PREFIXES = (
    "sklearn.",
    "numpy.",
    "builtins.",
    "collections.OrderedDict",
    "tasks.learning.log_target.LogTargetRegressor",  # the log-target wrapper of every family
    "tasks.learning.skewed_inputs.SkewedLog",  # the skewed-input log of the linear families
    *(prefix for family in all_families().values() for prefix in family.trusted_types),
)
# Packages beyond MODEL_REQUIREMENTS a logged model needs, by the type prefix that shows it.
EXTRA_REQUIREMENTS = {
    prefix: package for family in all_families().values() for prefix, package in family.requirements.items()
}


def skops_trusted_types(model: object) -> list[str]:
    """The types skops must be told to trust to reload this model.

    The model was built here from scikit-learn, LightGBM, NumPy and skl2onnx's cast types only;
    anything else is refused rather than trusted.
    """
    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    foreign = [name for name in untrusted if not name.startswith(TRUSTED_TYPE_PREFIXES)]
    if foreign:
        msg = f"model holds types no model family declares (tasks/learning/families): {foreign}"
        raise TypeError(msg)
    return list(untrusted)


def model_requirements(trusted_types: list[str]) -> list[str]:
    """The logged model's pip requirements, with LightGBM and skl2onnx when the model holds their types."""
    extra = {
        package
        for prefix, package in EXTRA_REQUIREMENTS.items()
        if any(name.startswith(prefix) for name in trusted_types)
    }
    return [*MODEL_REQUIREMENTS, *(f"{package}=={metadata.version(package)}" for package in sorted(extra))]


@dataclass(frozen=True)
class TrainingRecord:
    """What the run left in MLflow."""

    run_id: str
    experiment_id: str
    model_version: str | None
    promoted: bool


@dataclass(frozen=True)
class RunContext:
    """Everything about the run that is not the model itself."""

    model_name: str
    dataset_name: str
    source: str
    split_method: str
    reason: str
    train: pd.DataFrame
    target: str
    production: pd.DataFrame | None = None
    production_source: str = ""
    retrain_params: dict[str, str | int | float] = field(default_factory=dict)  # data policy, rows, window
    version_tags: dict[str, str] = field(default_factory=dict)  # what the model was trained from


def _log_candidates(candidates: list[FittedCandidate], chosen: str) -> None:
    """One nested run per candidate (its best parameters and holdout metrics), its trials as a table.

    Each family's tuning trials go into one table, `tuning/<family>.json`, of the training run
    (Evaluation / Artifacts in the MLflow UI): a run per trial would add dozens of runs to every
    training and bury the candidates that matter.
    """
    for candidate in candidates:
        with mlflow.start_run(run_name=candidate.family, nested=True):
            mlflow.log_params({"family": candidate.family, **candidate.params})
            mlflow.log_metrics({**candidate.metrics, "fit_seconds": candidate.fit_seconds})
            if candidate.tuning is not None and candidate.tuning.cv_score is not None:
                mlflow.log_metric(f"cv_{candidate.tuning.metric}", candidate.tuning.cv_score)
                mlflow.log_metric("tuning_trials", len(candidate.tuning.trials))
            mlflow.set_tag("chosen", str(candidate.family == chosen).lower())
        if candidate.tuning is not None:
            mlflow.log_table(candidate.tuning.table(), f"tuning/{candidate.family}.json")


def _log_recent_check(decision: PromotionDecision) -> None:
    """Both models' metric on the recent slice, and whether the check passed, failed or was skipped."""
    recent = decision.recent
    if recent.candidate_score is not None and recent.champion_score is not None:
        mlflow.log_metrics(
            {
                f"recent_{decision.metric}": recent.candidate_score,
                f"champion_recent_{decision.metric}": recent.champion_score,
                "recent_rows": recent.rows,
            }
        )
        mlflow.set_tag("recent_check", "passed" if recent.passed else "failed")
    elif recent.note:
        mlflow.set_tags({"recent_check": "skipped", "recent_check_note": recent.note})


def record_training_run(
    context: RunContext,
    snapshot: Snapshot,
    candidates: list[FittedCandidate],
    deployable: DeployableModel,
    decision: PromotionDecision,
    schema: ModelSchema,
    baseline: MonitoringBaseline,
    tracking_uri: str,
    artifact_root: str,
) -> TrainingRecord:
    """Log the run; when the gate passed, register the model and move `champion` to it.

    The alias moves last, after the bundle is logged, so whoever follows the alias always
    finds a complete bundle.
    """
    client = mlflow_client(tracking_uri)
    experiment_id = ensure_experiment(client, context.model_name, artifact_root)
    mlflow.set_experiment(experiment_id=experiment_id)
    chosen = deployable.candidate
    features = context.train[list(chosen.pipeline.feature_names_in_)]
    dataset = from_pandas(
        context.train,
        source=snapshot.url,
        targets=context.target,
        name=context.dataset_name,
        digest=snapshot.digest[:20],
    )
    with mlflow.start_run(run_name=f"train-{chosen.family}") as run:
        mlflow.log_input(dataset, context="training")
        if context.production is not None and not context.production.empty:
            production = from_pandas(
                context.production,
                source=context.production_source,
                name=f"{context.dataset_name}-production",
            )
            mlflow.log_input(production, context="production")
        mlflow.log_params(
            {
                "data_source": context.source,
                "data_digest": snapshot.digest,
                "data_snapshot": snapshot.url,
                "split": context.split_method,
                "family": chosen.family,
                "trigger": context.reason,
                "production_rows": 0 if context.production is None else len(context.production),
                "promotion_margin": decision.margin,
                **context.retrain_params,
            }
        )
        _log_candidates(candidates, chosen.family)
        mlflow.log_metrics({**chosen.metrics, "onnx_max_rel_error": deployable.parity.max_rel_error})
        mlflow.log_metrics({f"onnx_{name}": value for name, value in deployable.onnx_metrics.items()})
        if decision.champion_score is not None:
            mlflow.log_metric(f"champion_{decision.metric}", decision.champion_score)
        _log_recent_check(decision)
        mlflow.log_dict(decision.model_dump(), "promotion.json")
        mlflow.set_tags({"promoted": str(decision.promoted).lower(), "promotion_reason": decision.reason})
        trusted_types = skops_trusted_types(chosen.pipeline)
        model_info = mlflow.sklearn.log_model(
            chosen.pipeline,
            name="model",
            signature=infer_signature(features.head(100), chosen.pipeline.predict(features.head(100))),
            pip_requirements=model_requirements(trusted_types),
            skops_trusted_types=trusted_types,
        )
        version = None
        if decision.promoted:
            version = mlflow.register_model(
                model_info.model_uri,
                context.model_name,
                tags={"data_digest": snapshot.digest, "family": chosen.family, **context.version_tags},
            ).version
        metadata = BundleMetadata(
            model_name=context.model_name,
            model_version=None if version is None else str(version),
            run_id=run.info.run_id,
            family=chosen.family,
            task=schema.task,
            data_digest=snapshot.digest,
            data_snapshot=snapshot.url,
            metrics=deployable.onnx_metrics,
            onnx_sha256=sha256_hex(deployable.onnx_model),
            onnx_max_rel_error=deployable.parity.max_rel_error,
        )
        with tempfile.TemporaryDirectory() as folder:
            bundle = write_bundle(
                Path(folder) / BUNDLE_PATH, deployable.onnx_model, schema, metadata, baseline
            )
            mlflow.log_artifacts(str(bundle), BUNDLE_PATH)
        if version is not None:
            client.set_registered_model_alias(context.model_name, CHAMPION_ALIAS, str(version))
    return TrainingRecord(
        run.info.run_id, experiment_id, None if version is None else str(version), decision.promoted
    )
