"""The prediction page: one self-contained HTML file generated from a model bundle.

`build_page` turns a bundle's `schema.json` and `importance.json` into a form (the inputs the
model leans on most first) with inline CSS and JavaScript that calls `POST /predict`; the
function zip carries it and the function serves it at `GET /`.
`python -m deployments.targets.page_file` writes the same page as a static file for any web host.
"""

from deployments.page.render import build_page

__all__ = ["build_page"]
