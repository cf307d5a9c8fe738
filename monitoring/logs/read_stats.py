"""What a read of prediction logs (or labels) saw, and the sample of what it set aside."""

from __future__ import annotations

from dataclasses import dataclass, field

QUARANTINE_SAMPLES = 100
QUARANTINE_TEXT_CHARS = 2000


@dataclass
class BadLine:
    """A line (or, with line 0, a whole object) set aside, with where it came from and why."""

    object_key: str
    line: int
    reason: str
    text: str


@dataclass
class ReadStats:
    """What a read saw: objects, rows, and what was set aside."""

    objects: int = 0
    rows: int = 0
    bad_lines: int = 0
    bad_objects: int = 0
    compacted_hours: int = 0
    rows_before_sampling: int = 0
    batch_rows: int = 0
    samples: list[BadLine] = field(default_factory=list)

    @property
    def sampled(self) -> bool:
        """Whether the row cap cut the window down."""
        return self.rows_before_sampling > self.rows

    def add_bad(self, bad: list[BadLine]) -> None:
        """Count bad lines and keep the first ones as samples."""
        self.bad_lines += len(bad)
        self.keep_samples(bad)

    def add_bad_objects(self, bad: list[BadLine]) -> None:
        """Count whole objects set aside (seen, never parsed) and keep the first ones as samples."""
        self.objects += len(bad)
        self.bad_objects += len(bad)
        self.keep_samples(bad)

    def keep_samples(self, bad: list[BadLine]) -> None:
        """Keep the first bad lines as the quarantine sample."""
        room = QUARANTINE_SAMPLES - len(self.samples)
        self.samples.extend(bad[: max(room, 0)])

    def merge(self, part: ReadStats) -> None:
        """Add what another read (an hour, a chunk) saw."""
        self.objects += part.objects
        self.bad_objects += part.bad_objects
        self.bad_lines += part.bad_lines
        self.compacted_hours += part.compacted_hours
        self.rows_before_sampling += part.rows_before_sampling
        self.batch_rows += part.batch_rows
        self.keep_samples(part.samples)
