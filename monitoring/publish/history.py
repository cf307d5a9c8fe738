"""Window-by-window monitoring history in an Evidently workspace: one project per model.

The workspace lives under `<storage>/evidently` and has Evidently's local layout
(`<project id>/metadata.json`, `dashboard.json`, `snapshots/<id>.json`), so
`python -m monitoring.publish.history_ui` (Evidently's UI) reads it as is; on S3 too, through fsspec.

It is written through Evidently's workspace state (`LocalState`), the storage layer of
`evidently.ui.workspace.Workspace`, rather than through `Workspace` itself: opening a
`Workspace` parses every snapshot of every project (a 40-feature drift snapshot is ~3 MB,
and a hundred of them take ~15 s to open), which each monitoring run would pay again.
Snapshots are stored without their data sets (what `Workspace.add_run(include_data=False)`
does). They keep Evidently's widgets, as the HTML reports do: histograms (whose edges are each
column's minimum and maximum) and each numeric column's mean over 150 bins of row positions,
which for a window of a few hundred rows or fewer are largely single values.

A project's id is derived from the model name, so concurrent first runs of one model write
the same project instead of two; a project of that name made another way is used as found.
"""

from __future__ import annotations

import uuid
from urllib.parse import unquote, urlparse

from evidently.core.report import Snapshot
from evidently.legacy.core import new_id
from evidently.sdk.models import (
    DashboardModel,
    DashboardPanelPlot,
    DashboardTabModel,
    PanelMetric,
    ProjectModel,
)
from evidently.sdk.panels import line_plot_panel
from evidently.ui.storage.local.base import LocalState

from monitoring.quality.figures import DOMAIN_AUC, ESTIMATE_RELIABLE
from tasks.core.storage import filesystem, join_url

WORKSPACE_FOLDER = "evidently"
DASHBOARD_TAB = "Monitoring"
_PROJECT_NAMESPACE = uuid.UUID("6f1d3c52-9a7e-4f0b-8c21-5d0e6b7a9c43")
_MONITOR_VALUE = "evidently:metric_v2:MonitorValue"


def workspace_url(storage: str) -> str:
    """The workspace under a storage root (a local path, `file://` or `s3://` URL)."""
    return join_url(storage, WORKSPACE_FOLDER)


def workspace_location(workspace: str) -> str:
    """What Evidently opens: a local path for `file://` URLs, other URLs unchanged."""
    parsed = urlparse(workspace)
    return unquote(parsed.path) if parsed.scheme == "file" else workspace


def open_state(workspace: str) -> LocalState:
    """Evidently's workspace state on this project's filesystem for the URL.

    Evidently opens fsspec's cached instance, which keeps the endpoint and the S3 listings it
    saw first; the project's filesystem has no listing cache and follows `AWS_ENDPOINT_URL`.
    """
    location = workspace_location(workspace)
    state = LocalState(location)
    state.location.fs = filesystem(location)[0]
    return state


def estimated_name(primary_metric: str) -> str:
    """The `MonitorValue` name of the estimated primary metric, e.g. `estimated_rmse`."""
    return f"estimated_{primary_metric}"


def unreliable_name(primary_metric: str) -> str:
    """The `MonitorValue` name of an estimate marked unreliable, e.g. `unreliable_estimated_rmse`."""
    return f"unreliable_estimated_{primary_metric}"


def live_name(primary_metric: str) -> str:
    """The `MonitorValue` name of the primary metric on labelled rows, e.g. `live_rmse`."""
    return f"live_{primary_metric}"


def project_id_for(model_name: str) -> uuid.UUID:
    """The id of a model's project: the same for every run, on every machine."""
    return uuid.uuid5(_PROJECT_NAMESPACE, model_name)


def dashboard_panels(primary_metric: str | None) -> list[DashboardPanelPlot]:
    """Line plots over windows: drift share, weighted drift, estimated vs live metric, domain AUC, rows."""
    panels = [
        line_plot_panel(
            title="Drifted features share",
            values=[
                PanelMetric(
                    metric="DriftedColumnsCount", metric_labels={"value_type": "share"}, legend="share"
                )
            ],
            description="Share of model inputs whose drift score reached its threshold (DataDriftPreset)",
            size="half",
        ),
        line_plot_panel(
            title="Weighted drift",
            values=[PanelMetric(metric="WeightedDrift", legend="importance share")],
            description="Importance share of drifted features",
            size="half",
        ),
    ]
    if primary_metric:
        panels.append(
            line_plot_panel(
                title=f"Estimated and live {primary_metric}",
                values=[
                    PanelMetric(
                        metric="MonitorValue",
                        metric_labels={"name": name(primary_metric)},
                        legend=name(primary_metric),
                    )
                    for name in (estimated_name, unreliable_name, live_name)
                ],
                description=(
                    "Estimated without labels (a separate series where the window left the "
                    "holdout's support), and measured on labelled rows"
                ),
                size="half",
            )
        )
    panels.append(
        line_plot_panel(
            title="Domain classifier AUC and estimate reliability",
            values=[
                PanelMetric(metric="MonitorValue", metric_labels={"name": name}, legend=name)
                for name in (DOMAIN_AUC, ESTIMATE_RELIABLE)
            ],
            description=(
                "Out-of-fold ROC AUC of a classifier telling the window's rows from the holdout's "
                "(0.5 alike, 1 apart), and 1 when the estimate is reliable, 0 when it is not"
            ),
            size="half",
        )
    )
    panels.append(
        line_plot_panel(
            title="Rows per window",
            values=[PanelMetric(metric="RowCount", legend="rows")],
            size="half",
        )
    )
    return panels


def primary_metric_of(snapshot: Snapshot) -> str | None:
    """The primary metric named by the snapshot's estimated or live `MonitorValue`, if any."""
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type") == _MONITOR_VALUE:
            name = str(config.get("name", ""))
            for prefix in (estimated_name(""), unreliable_name(""), live_name("")):
                if name.startswith(prefix) and len(name) > len(prefix):
                    return name.removeprefix(prefix)
    return None


def ensure_project(state: LocalState, model_name: str) -> uuid.UUID:
    """The model's project id, creating the project when there is none."""
    project_id = project_id_for(model_name)
    try:
        state.read_project(project_id)
    except FileNotFoundError:
        pass
    else:
        return project_id
    for other in state.list_projects():
        if state.read_project(other).name == model_name:
            return uuid.UUID(str(other))
    description = f"Monitoring windows of model {model_name}"
    state.write_project(ProjectModel(id=project_id, name=model_name, description=description))
    return project_id


def ensure_dashboard(state: LocalState, project_id: uuid.UUID, primary_metric: str | None) -> None:
    """Add the panels the dashboard lacks (matched by title); existing panels stay as they are."""
    dashboard: DashboardModel = state.read_dashboard(project_id)
    titles = {panel.title for panel in dashboard.panels}
    missing = [panel for panel in dashboard_panels(primary_metric) if panel.title not in titles]
    if not missing:
        return
    tab = next((tab for tab in dashboard.tabs if tab.title == DASHBOARD_TAB), None)
    if tab is None:
        tab = DashboardTabModel(title=DASHBOARD_TAB, panels=[])
        dashboard.tabs.append(tab)
    dashboard.panels.extend(missing)
    tab.panels.extend(panel.id for panel in missing)
    state.write_dashboard(project_id, dashboard)


def add_snapshot(
    workspace: str, model_name: str, snapshot: Snapshot, *, primary_metric: str | None = None
) -> str:
    """Store a snapshot (no data sets) in the model's project; returns the snapshot id.

    The workspace and the project with its dashboard are created on first use. The primary
    metric of the estimated/live panel defaults to the one the snapshot's `MonitorValue`s name.
    """
    state = open_state(workspace)
    state.location.makedirs("")
    project_id = ensure_project(state, model_name)
    ensure_dashboard(state, project_id, primary_metric or primary_metric_of(snapshot))
    snapshot_id = new_id()
    state.write_snapshot(project_id, snapshot_id, snapshot.to_snapshot_model())
    return str(snapshot_id)
