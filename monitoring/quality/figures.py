"""The compared champion's quality figures in a window."""

from __future__ import annotations

from dataclasses import dataclass, field

DOMAIN_AUC = "domain_classifier_auc"
ESTIMATE_RELIABLE = "estimate_reliable"


@dataclass(frozen=True)
class QualityFigures:
    """The compared champion's quality in the window: estimated, realized, and the drops.

    `domain_auc` is the out-of-fold ROC AUC of a classifier telling the window's rows from the
    holdout's (0.5 alike, 1 apart); an estimate is unreliable, with reasons, where the window
    leaves the holdout's support.
    """

    estimated: dict[str, float]
    live: dict[str, float]
    estimation_error: dict[str, float]
    estimated_drop: float | None
    live_drop: float | None
    domain_auc: float | None = None
    estimate_reliable: bool = True
    estimate_unreliable_reasons: list[str] = field(default_factory=list)

    def window_values(self) -> dict[str, float]:
        """`estimated_<metric>`, `live_<metric>` and the domain figures for the snapshot and its dashboard.

        An unreliable estimate is stored as `unreliable_estimated_<metric>`, so the dashboard
        draws it as its own series, and `estimate_reliable` is 1 or 0.
        """
        prefix = "estimated_" if self.estimate_reliable else "unreliable_estimated_"
        domain = {} if self.domain_auc is None else {DOMAIN_AUC: self.domain_auc}
        reliable = {ESTIMATE_RELIABLE: float(self.estimate_reliable)} if self.estimated else {}
        return {
            **{f"{prefix}{name}": value for name, value in self.estimated.items()},
            **{f"live_{name}": value for name, value in self.live.items()},
            **domain,
            **reliable,
        }
