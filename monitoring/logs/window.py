"""Time windows of prediction logs and the partitions they cover."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Window:
    """A half-open UTC interval `[start, end)`."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            msg = "window bounds must be timezone-aware"
            raise ValueError(msg)
        if self.end <= self.start:
            msg = f"window end {self.end.isoformat()} is not after its start {self.start.isoformat()}"
            raise ValueError(msg)

    @classmethod
    def last(cls, hours: float, now: datetime | None = None) -> Window:
        """The window that ends now and lasts `hours`."""
        end = (now or datetime.now(UTC)).astimezone(UTC)
        return cls(end - timedelta(hours=hours), end)

    @property
    def name(self) -> str:
        """A file-name-safe label, e.g. `20261123T1000Z-20261124T1000Z`."""
        return f"{self.start:%Y%m%dT%H%MZ}-{self.end:%Y%m%dT%H%MZ}"

    def hours(self) -> list[datetime]:
        """Start of every hour partition that overlaps the window."""
        hour = self.start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        hours = []
        while hour < self.end:
            hours.append(hour)
            hour += HOUR
        return hours

    def days(self) -> list[datetime]:
        """Start of every day partition that overlaps the window."""
        return sorted({hour.replace(hour=0) for hour in self.hours()})

    def covers_whole(self, hour: datetime) -> bool:
        """Whether the whole hour lies inside the window (no row filtering needed)."""
        return self.start <= hour and hour + HOUR <= self.end


def parse_time(text: str) -> datetime:
    """An ISO 8601 time; naive times are taken as UTC."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
