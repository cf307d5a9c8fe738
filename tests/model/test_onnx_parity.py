"""Every candidate family converts to ONNX and agrees with its pipeline, for both task types."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import numpy as np
import onnx
import pytest
import skops.io
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from tasks.core.dataset_spec import AMES_SPEC, DatasetSpec
from tasks.learning.candidate_selection import FittedCandidate, fit_candidate, select_deployable
from tasks.learning.candidates import FAMILIES, LOG_TARGET
from tasks.learning.data import prepare_data, read_table
from tasks.learning.onnx_export import (
    TARGET_OPSET,
    OnnxExportError,
    check_parity,
    convert_pipeline,
    create_session,
    onnx_scores,
    pipeline_scores,
    takes_packed_inputs,
)
from tasks.learning.split import split_data
from tasks.learning.tracking import MODEL_REQUIREMENTS, model_requirements, skops_trusted_types
from tasks.learning.tuning import TuningResult

TOLERANCE = 1e-4


def _prepared(path: Path, task: str):
    spec = DatasetSpec(name=path.stem, target="target", task=task, drop=[], categorical=[])
    data = prepare_data(read_table(str(path), spec.missing_values), spec, str(path), 50)
    return data, split_data(data, None, 0.2, 7)


@pytest.fixture(scope="module")
def diabetes(diabetes_csv: Path):
    return _prepared(diabetes_csv, "regression")


@pytest.fixture(scope="module")
def diabetes_with_a_category(diabetes):
    """Diabetes with `sex` as a category: the graph then takes a string input for it."""
    data, _ = diabetes
    data = type(data)(
        data.frame.assign(sex=data.frame["sex"].map(lambda v: "f" if v > 0 else "m")),
        data.target,
        data.task,
        [n for n in data.numeric if n != "sex"],
        ["sex"],
    )
    return data, split_data(data, None, 0.2, 7)


@pytest.fixture(scope="module")
def breast_cancer(breast_cancer_csv: Path):
    return _prepared(breast_cancer_csv, "classification")


@pytest.mark.parametrize("family", list(FAMILIES["regression"]))
def test_regression_families_match_their_onnx_export(diabetes, family: str) -> None:
    data, split = diabetes
    candidate = fit_candidate(family, data, split, seed=0)
    assert candidate.metrics["r2"] > 0.25  # diabetes is noisy; a working model explains some of it
    deployable = select_deployable([candidate], data, split.holdout, TOLERANCE)
    assert deployable.parity.max_rel_error <= TOLERANCE
    assert deployable.onnx_metrics["rmse"] == pytest.approx(candidate.metrics["rmse"], rel=1e-4)


@pytest.mark.parametrize("family", list(FAMILIES["classification"]))
def test_classification_families_match_their_onnx_export(breast_cancer, family: str) -> None:
    data, split = breast_cancer
    assert data.classes == ["benign", "malignant"]
    candidate = fit_candidate(family, data, split, seed=0)
    assert candidate.metrics["roc_auc"] > 0.95
    deployable = select_deployable([candidate], data, split.holdout, TOLERANCE)
    assert deployable.parity.max_rel_error <= TOLERANCE
    assert set(deployable.onnx_metrics) == {"roc_auc", "log_loss", "f1", "accuracy"}


def test_categorical_inputs_and_unknown_categories(diabetes_with_a_category) -> None:
    data, split = diabetes_with_a_category
    candidate = fit_candidate("gradient_boosting", data, split, seed=0)
    model = convert_pipeline(candidate.pipeline, data.numeric, data.categorical)
    unseen = split.holdout.assign(sex="unknown-level")
    onnx = onnx_scores(create_session(model), unseen, data.numeric, data.categorical, "regression")
    expected = candidate.pipeline.predict(unseen[data.features])
    check_parity(expected, onnx, TOLERANCE)


def test_graphs_with_one_input_per_feature_still_score(diabetes_with_a_category) -> None:
    """A champion exported before the inputs were packed is still scored by the retrain gate."""
    data, split = diabetes_with_a_category
    candidate = fit_candidate("ridge", data, split, seed=0)
    inputs = [
        (name, StringTensorType([None, 1]) if name == "sex" else FloatTensorType([None, 1]))
        for name in candidate.pipeline.feature_names_in_
    ]
    per_feature = to_onnx(candidate.pipeline, initial_types=inputs, target_opset=TARGET_OPSET)
    packed = convert_pipeline(candidate.pipeline, data.numeric, data.categorical)
    assert [value.name for value in per_feature.graph.input] == list(candidate.pipeline.feature_names_in_)
    assert [value.name for value in onnx.load_from_string(packed).graph.input] == ["numeric", "categorical"]
    old, new = (create_session(model) for model in (per_feature.SerializeToString(), packed))
    assert not takes_packed_inputs(old)
    assert takes_packed_inputs(new)
    old_scores = onnx_scores(old, split.holdout, data.numeric, data.categorical, "regression")
    new_scores = onnx_scores(new, split.holdout, data.numeric, data.categorical, "regression")
    np.testing.assert_array_equal(old_scores, new_scores)


def test_unconvertible_best_candidate_falls_back_to_the_next(diabetes) -> None:
    data, split = diabetes
    good = fit_candidate("ridge", data, split, seed=0)
    # A custom Python function cannot be expressed in ONNX; give it the best score so it is tried first.
    custom = Pipeline([("custom", FunctionTransformer(np.log1p)), ("model", good.pipeline)])
    custom.fit(split.train[data.features], split.train[data.target])
    unconvertible = FittedCandidate("custom", custom, {**good.metrics, "rmse": good.metrics["rmse"] / 2}, 0.0)
    deployable = select_deployable([unconvertible, good], data, split.holdout, TOLERANCE)
    assert deployable.candidate.family == "ridge"
    assert "ONNX conversion failed" in deployable.rejected["custom"]


def test_no_convertible_candidate_is_an_error(diabetes) -> None:
    data, split = diabetes
    custom = Pipeline([("custom", FunctionTransformer(np.sqrt))])
    custom.fit(split.train[data.features])
    with pytest.raises(OnnxExportError, match="no candidate could be exported"):
        select_deployable(
            [FittedCandidate("custom", custom, {"rmse": 1.0}, 0.0)], data, split.holdout, TOLERANCE
        )


def test_parity_check_refuses_disagreement() -> None:
    expected = np.array([100_000.0, 200_000.0, 0.5])
    check_parity(expected, expected * (1 + 5e-5), TOLERANCE)
    with pytest.raises(OnnxExportError, match="over the tolerance"):
        check_parity(expected, expected * (1 + 5e-4), TOLERANCE)
    with pytest.raises(OnnxExportError):
        check_parity(expected, np.array([np.nan, 1.0, 2.0]), TOLERANCE)


@pytest.fixture(scope="module")
def ames(ames_csv: Path):
    data = prepare_data(read_table(str(ames_csv), AMES_SPEC.missing_values), AMES_SPEC, str(ames_csv), 50)
    return data, split_data(data, None, 0.2, 42)


@pytest.mark.parametrize("family", ["ridge", "random_forest", "lightgbm"])
def test_log_target_model_exports_prices_with_parity(ames, family: str) -> None:
    data, split = ames
    tuning = TuningResult(family, {LOG_TARGET: True}, "rmse", None)
    candidate = fit_candidate(family, data, split, seed=0, tuning=tuning)
    assert candidate.params[LOG_TARGET] == "True"
    deployable = select_deployable([candidate], data, split.holdout, TOLERANCE)
    assert deployable.parity.max_rel_error <= TOLERANCE
    graph = onnx.load_from_string(deployable.onnx_model).graph
    [output] = graph.output
    assert next(node for node in graph.node if output.name in node.output).op_type == "Exp"
    # the graph returns prices, not log prices: it matches the holdout's sale prices
    prices = deployable.onnx_scores
    assert 100_000 < np.median(prices) < 300_000
    assert deployable.onnx_metrics["rmsle"] < 0.25
    # the regressor inside learned log prices; the graph clips them to the log range it was
    # fitted on (a linear model leaves it on unusual houses), then its Exp turns them into prices
    model = candidate.pipeline.named_steps["model"]
    features = candidate.pipeline[:-1].transform(split.holdout[data.features])
    log_prices = model.regressor_.predict(features)
    assert 10 < np.median(log_prices) < 14
    low, high = model.log_range_
    assert (low, high) == (np.log(split.train[data.target].min()), np.log(split.train[data.target].max()))
    assert any(node.op_type == "Clip" for node in graph.node)
    check_parity(np.exp(np.clip(log_prices, low, high)), prices, TOLERANCE)
    assert prices.max() <= np.exp(high) * (1 + TOLERANCE)


def test_lightgbm_pipeline_is_logged_with_skops_and_its_requirements(diabetes) -> None:
    data, split = diabetes
    pipeline = fit_candidate("lightgbm", data, split, seed=0).pipeline
    trusted = skops_trusted_types(pipeline)
    reloaded = skops.io.loads(skops.io.dumps(pipeline), trusted=trusted)
    holdout = split.holdout[data.features]
    np.testing.assert_array_equal(reloaded.predict(holdout), pipeline.predict(holdout))
    requirements = model_requirements(trusted)
    assert {f"lightgbm=={version('lightgbm')}", f"skl2onnx=={version('skl2onnx')}"} <= set(requirements)
    assert model_requirements(skops_trusted_types(fit_candidate("ridge", data, split, seed=0).pipeline)) == (
        MODEL_REQUIREMENTS
    )


def test_linear_models_log_skewed_inputs_and_their_graph_does_the_same(ames) -> None:
    """A lot ten times the largest in training, or a negative area, scores alike in ONNX and scikit-learn."""
    data, split = ames
    candidate = fit_candidate("ridge", data, split, seed=0)
    skewed = (
        candidate.pipeline.named_steps["preprocess"].named_transformers_["numeric"].named_steps["log_skewed"]
    )
    chosen = dict(zip(data.numeric, skewed.logged_, strict=True))
    assert chosen["lot_area"]  # right-skewed, never negative
    assert chosen["gr_liv_area"]
    assert not chosen["year_built"]  # skewed to the left
    assert "SkewedLog" in str(skops_trusted_types(candidate.pipeline))
    odd = split.holdout.head(40).copy()
    odd.loc[odd.index[:20], "lot_area"] = split.train["lot_area"].max() * 10
    odd.loc[odd.index[20:], "gr_liv_area"] = -50.0
    session = create_session(convert_pipeline(candidate.pipeline, data.numeric, data.categorical))
    expected = pipeline_scores(candidate.pipeline, odd[data.features], data.task)
    check_parity(
        expected,
        onnx_scores(session, odd[data.features], data.numeric, data.categorical, data.task),
        TOLERANCE,
    )
    usual = pipeline_scores(candidate.pipeline, split.holdout.head(20)[data.features], data.task)
    # a lot ten times any seen (about 190 standard deviations) adds a step to the price, not a fortune
    assert np.all(expected[:20] - usual < 150_000)
