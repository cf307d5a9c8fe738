"""What the page asks for: the model's inputs, most important first, with hints and typical values."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from deployments.lambda_handler.contract import IMPORTANCE_FILE, METADATA_FILE, Feature, ServingSchema
from deployments.page.typical import Typical, typical_values

TOP_INPUTS = 10  # inputs shown first; the rest fold under "more details"
MAX_LISTED_CATEGORIES = 200  # above this a category is typed, not chosen from a list
# Units read from common column-name endings; anything else gets no unit.
_UNITS = (
    (re.compile(r"(^|_)(sf|sqft|area)(_|$)"), "square feet"),
    (re.compile(r"(^|_)(year|yr)(_|$)|_yr_|^yr"), "a year"),
    (re.compile(r"(^|_)(mo|month)(_|$)"), "a month, 1 to 12"),
    (re.compile(r"(^|_)(frontage|feet|ft)(_|$)"), "feet"),
    (re.compile(r"(^|_)(pct|percent)(_|$)"), "percent"),
    (re.compile(r"(^|_)(age)(_|$)"), "years"),
)


@dataclass(frozen=True)
class FormField:
    """One input of the form."""

    name: str
    label: str
    kind: Literal["number", "category"]
    hint: str
    typical: str  # the value the field starts with ("" leaves it empty: the model imputes it)
    categories: tuple[str, ...]
    importance: float
    top: bool

    @property
    def listed(self) -> bool:
        """Whether the field is a dropdown of the training categories."""
        return self.kind == "category" and 0 < len(self.categories) <= MAX_LISTED_CATEGORIES


@dataclass(frozen=True)
class PageForm:
    """The whole form and what the answer means."""

    model_name: str
    model_version: str
    task: str
    target: str
    classes: tuple[str, ...]
    fields: tuple[FormField, ...]  # the top inputs first, in order of importance

    @property
    def target_label(self) -> str:
        """The predicted column as a person reads it."""
        return label_for(self.target)

    @property
    def top(self) -> list[FormField]:
        """The inputs shown first."""
        return [field for field in self.fields if field.top]

    @property
    def more(self) -> list[FormField]:
        """The inputs folded under "more details"."""
        return [field for field in self.fields if not field.top]


def label_for(name: str) -> str:
    """`gr_liv_area` → `Gr liv area`; the `f_` prefix of names that began with a digit is dropped."""
    words = re.sub(r"^f_(?=\d)", "", name).replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _number(value: float) -> str:
    if abs(value) < 10_000:  # noqa: PLR2004 - years and small counts read better without a separator
        return f"{value:.0f}" if float(value).is_integer() else f"{value:.4g}"
    return f"{value:,.0f}"


def hint_for(feature: Feature, typical: Typical | None) -> str:
    """Unit, kind of number and the training range, or how many categories training saw."""
    if not feature.is_number:
        count = len(feature.categories)
        return f"one of {count} categories seen in training" if count else "text"
    parts = [unit for pattern, unit in _UNITS if pattern.search(feature.name)][:1]
    if typical is not None and typical.integer and not parts:
        parts.append("a whole number")
    if feature.minimum is not None and feature.maximum is not None:
        parts.append(f"training range {_number(feature.minimum)} to {_number(feature.maximum)}")
    return " · ".join(parts) or "a number"


def _importance(bundle: Path) -> dict[str, float]:
    path = bundle / IMPORTANCE_FILE
    if not path.is_file():  # bundles made before importance was measured: schema order
        return {}
    return {str(name): float(share) for name, share in json.loads(path.read_text("utf-8"))["shares"].items()}


def _metadata(bundle: Path) -> dict[str, object]:
    path = bundle / METADATA_FILE
    return json.loads(path.read_text("utf-8")) if path.is_file() else {}


def build_form(bundle: Path, top: int = TOP_INPUTS) -> PageForm:
    """The form of a bundle: inputs by importance (ties in schema order), with typical values."""
    schema = ServingSchema.load(bundle)
    shares = _importance(bundle)
    typical = typical_values(bundle, schema)
    order = sorted(
        range(len(schema.features)), key=lambda index: -shares.get(schema.features[index].name, 0.0)
    )
    fields = []
    for rank, index in enumerate(order):
        feature = schema.features[index]
        known = typical.get(feature.name)
        fields.append(
            FormField(
                name=feature.name,
                label=label_for(feature.name),
                kind=feature.kind,
                hint=hint_for(feature, known),
                typical=known.text if known else "",
                categories=feature.categories,
                importance=shares.get(feature.name, 0.0),
                top=rank < top,
            )
        )
    metadata = _metadata(bundle)
    return PageForm(
        model_name=str(metadata.get("model_name") or ""),
        model_version=str(metadata.get("model_version") or ""),
        task=schema.task,
        target=schema.target,
        classes=schema.classes,
        fields=tuple(fields),
    )
