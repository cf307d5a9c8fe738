r"""A report's HTML page, safe to open whatever the logged traffic held.

Evidently writes a report's data into an inline `<script>` as plain JSON, and JSON leaves
`<` as it is: a logged category such as `</script><script>...` ends that script and runs as
the page's own code when someone opens the report. This writes the same page from
Evidently's own template with the data left out (`embed_data=False`) and adds the data block
with `<`, `>` and `&` written as JSON escapes (`\u003c`, ...): the same values for the page's
script, no markup for the browser's parser.

A page is stored gzip-compressed (`<window>.html.gz`): Evidently's page carries its 3.5 MB
script and every column's charts whatever the sample, about 7 MB for Ames, and compresses
to a fifth of that. S3 serves it with `Content-Encoding: gzip` and the report server does
the same, so a browser opens it as the HTML page it is.
"""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any

from evidently.core.report import Snapshot
from evidently.legacy.model.dashboard import DashboardInfo
from evidently.legacy.model.widget import AdditionalGraphInfo, BaseWidgetInfo
from evidently.legacy.renderers.html_widgets import group_widget
from evidently.legacy.utils import NumpyEncoder
from evidently.legacy.utils.dashboard import TemplateParams, dashboard_info_to_json, file_html_template

from tasks.core.storage import read_bytes, write_bytes

REPORT_SUFFIX = ".html.gz"
GZIP_MAGIC = b"\x1f\x8b"

_NO_DATA = "<!-- no embedded data -->"  # where Evidently's template puts the data when it embeds it
_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def script_json(text: str) -> str:
    """JSON text that cannot end or open markup inside a `<script>` element.

    `<`, `>` and `&` occur in JSON only inside strings, where their escapes mean the same.
    """
    for character, escape in _ESCAPES.items():
        text = text.replace(character, escape)
    return text


def _additional_graphs(widgets: list[BaseWidgetInfo]) -> dict[str, Any]:
    """The details graphs the page loads by id, collected as `render_widgets` collects them."""
    graphs: dict[str, Any] = {}
    for widget in widgets:
        for graph in widget.get_additional_graphs():
            info = graph.params if isinstance(graph, AdditionalGraphInfo) else graph
            graphs[str(graph.id)] = info.dict() if isinstance(info, BaseWidgetInfo) else info
    return graphs


def report_html(snapshot: Snapshot) -> str:
    """The standalone HTML page of a snapshot, as `Snapshot.save_html` writes it, data escaped."""
    model = snapshot.to_snapshot_model()
    widgets = [group_widget(title="", widgets=list(model.widgets)), *model.tests_widgets]
    dashboard_id = f"metric_{uuid.uuid4().hex}"
    dashboard = DashboardInfo(name="Report", widgets=widgets)
    graphs = _additional_graphs(widgets)
    params = TemplateParams(dashboard_id, dashboard, additional_graphs={}, embed_data=False)
    page: str = file_html_template(params)
    if page.count(_NO_DATA) != 1:
        msg = "Evidently's report template changed: no single place for the report's data"
        raise RuntimeError(msg)
    data = (
        "<script>\n"
        f"    var {dashboard_id} = {script_json(dashboard_info_to_json(dashboard))};\n"
        f"    var additional_graphs_{dashboard_id} = {script_json(json.dumps(graphs, cls=NumpyEncoder))};\n"
        "</script>"
    )
    return page.replace(_NO_DATA, data)


def save_html(snapshot: Snapshot, url: str) -> str:
    """Write the report's page, gzip-compressed, to `url` (a file or S3 URL) and return the URL."""
    page = gzip.compress(report_html(snapshot).encode("utf-8"), mtime=0)
    return write_bytes(url, page, ContentType="text/html; charset=utf-8", ContentEncoding="gzip")


def read_html(url: str) -> str:
    """A stored report's page as text, compressed or not (reports written before compression)."""
    payload = read_bytes(url)
    return (gzip.decompress(payload) if payload.startswith(GZIP_MAGIC) else payload).decode("utf-8")
