"""Render the page: the form as HTML, the CSS and JavaScript inline, a content security policy.

The policy allows the page's own script and style (by hash) and requests to the API only, so
the page works offline and sends nothing anywhere else; without an API URL that is its own
origin (the function serves it beside `/predict`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from html import escape
from importlib import resources
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from deployments.lambda_handler.config import DEFAULT_MAX_BATCH_ROWS, DEFAULT_MAX_BODY_BYTES
from deployments.page.form import TOP_INPUTS, FormField, PageForm, build_form
from tasks.core.errors import UserError

PageAuth = Literal["iam", "jwt", "none"]
MAX_PAGE_BYTES = 100 * 1024


class PageError(UserError, ValueError):
    """The page cannot be made as asked (an API URL that is no http(s) URL)."""


def _asset(name: str) -> str:
    return resources.files("deployments.page").joinpath("assets", name).read_text("utf-8")


def _digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def api_origin(api_url: str) -> str:
    """The scheme, host and port of an API URL; PageError for anything but http(s)."""
    parts = urlsplit(api_url.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        msg = f"the API URL must be an http:// or https:// URL, got {api_url!r}"
        raise PageError(msg)
    return f"{parts.scheme}://{parts.netloc}"


def _field(field: FormField) -> str:
    name = escape(field.name)
    ids = f'id="f-{name}" name="{name}" aria-describedby="h-{name} e-{name}"'
    if field.listed:
        options = [f'<option value=""{"" if field.typical else " selected"}>(not given)</option>']
        options += [
            f"<option{' selected' if level == field.typical else ''}>{escape(level)}</option>"
            for level in field.categories
        ]
        control = f"<select {ids}>{''.join(options)}</select>"
    else:
        mode = ' inputmode="decimal"' if field.kind == "number" else ""
        value = "" if field.top else escape(field.typical, quote=True)
        placeholder = f' placeholder="e.g. {escape(field.typical, quote=True)}"' if field.typical else ""
        control = f'<input type="text" {ids}{mode} autocomplete="off" value="{value}"{placeholder}>'
    label = f'<label for="f-{name}">{escape(field.label)}<code>{name}</code></label>'
    hint = f'<p class="hint" id="h-{name}">{escape(field.hint)}</p>'
    return f'<div class="field">{label}{control}{hint}<p class="error" id="e-{name}" hidden></p></div>'


def _top_select(field: FormField) -> FormField:
    """A top input starts empty: the person chooses it (the typical value is only a hint)."""
    if not (field.top and field.listed):
        return field
    hint = f"{field.hint} · most often {field.typical}" if field.typical else field.hint
    return FormField(**{**field.__dict__, "typical": "", "hint": hint})


def _access(auth: PageAuth) -> str:
    if auth == "jwt":
        return (
            '<section id="access"><h2>Sign in</h2><label for="token">Access token (JWT) of your identity '
            'provider</label><input type="password" id="token" autocomplete="off" spellcheck="false">'
            '<p class="hint">Sent as a bearer token with each request and kept for this tab only; a sign-in '
            "that redirects here with <code>#access_token=…</code> fills it in.</p></section>"
        )
    if auth == "iam":
        return (
            '<section id="access" class="note" role="note"><h2>Signed requests only</h2><p>This API accepts '
            "only SigV4-signed requests (<code>MLOPS_API_AUTH=iam</code>), which a browser cannot send. "
            "Browser users need an API deployed with <code>MLOPS_API_AUTH=jwt</code> (sign in with a token) "
            "or <code>none</code>.</p></section>"
        )
    return ""


def render_page(form: PageForm, api_url: str = "", auth: PageAuth = "none") -> str:
    """The page's HTML for a form, calling `POST /predict` of `api_url` (its own origin if empty)."""
    connect = api_origin(api_url) if api_url else "'self'"
    style, script = _asset("page.css"), _asset("page.js")
    spec = {
        "api": {
            "url": api_url.strip(),
            "auth": auth,
            "maxRows": DEFAULT_MAX_BATCH_ROWS,
            "maxBytes": DEFAULT_MAX_BODY_BYTES,
        },
        "model": {
            "name": form.model_name,
            "version": form.model_version,
            "task": form.task,
            "targetLabel": form.target_label,
            "classes": list(form.classes),
        },
        "fields": [{"name": field.name, "label": field.label, "kind": field.kind} for field in form.fields],
    }
    data = json.dumps(spec, separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c")
    policy = (
        f"default-src 'none'; script-src {_digest(script)}; style-src {_digest(style)}; "
        f"connect-src {connect}; img-src data:; base-uri 'none'; form-action 'none'"
    )
    top = [_field(_top_select(field)) for field in form.top]
    more = [_field(field) for field in form.more]
    title = f"{form.target_label} from {form.model_name} v{form.model_version}"
    folded = (
        f'<details id="more"><summary>More details ({len(more)} inputs, filled with typical values you '
        f'may change)</summary><div class="grid">{"".join(more)}</div></details>'
        if more
        else ""
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{escape(policy, quote=True)}">
<meta name="referrer" content="no-referrer">
<title>{escape(title)}</title>
<link rel="icon" href="data:,">
<style>{style}</style>
</head>
<body>
<header><h1>Predict the {escape(form.target_label.lower())}</h1>
<p class="meta">Model <b>{escape(form.model_name)}</b> version {escape(form.model_version)} ·
{len(form.fields)} inputs, the {len(top)} that matter most to the model first. Inputs left empty are filled
in by the model.</p></header>
<main>
{_access(auth)}
<form id="predict-form" novalidate>
<fieldset><legend>The inputs that matter most</legend><div class="grid">{"".join(top)}</div></fieldset>
{folded}
<div class="actions"><button type="submit" id="predict">Predict</button>
<button type="reset" class="secondary">Start again</button></div>
<p class="error" id="form-error" role="alert" hidden></p>
</form>
<section id="answer" aria-live="polite" hidden><h2>Answer</h2>
<p class="prediction" id="prediction"></p><table id="probabilities" hidden></table>
<p id="notes"></p><p class="small" id="answer-meta"></p></section>
<section id="file"><h2>Score a file</h2>
<form id="file-form"><label for="csv">A CSV file, one row per request, with a header naming the inputs
(as in the training data or as above)</label>
<p><input type="file" id="csv" accept=".csv,text/csv"></p>
<button type="submit" id="score">Score the file</button></form>
<p id="file-status" aria-live="polite"></p><p><a id="download" hidden></a></p></section>
</main>
<script type="application/json" id="page-spec">{data}</script>
<script>{script}</script>
</body>
</html>
"""


def build_page(bundle: Path, api_url: str = "", auth: PageAuth = "none", top: int = TOP_INPUTS) -> str:
    """The page of a model bundle (its `schema.json`, `importance.json` and training rows)."""
    return render_page(build_form(bundle, top), api_url, auth)
