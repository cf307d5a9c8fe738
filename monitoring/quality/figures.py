"""The compared champion's quality figures in a window."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QualityFigures:
    """The compared champion's quality in the window: estimated, realized, and the drops."""

    estimated: dict[str, float]
    live: dict[str, float]
    estimation_error: dict[str, float]
    estimated_drop: float | None
    live_drop: float | None

    def window_values(self) -> dict[str, float]:
        """`estimated_<metric>` and `live_<metric>` values for the snapshot and its dashboard."""
        return {
            **{f"estimated_{name}": value for name, value in self.estimated.items()},
            **{f"live_{name}": value for name, value in self.live.items()},
        }
