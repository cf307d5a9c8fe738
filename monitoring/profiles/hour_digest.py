"""One hour of a model's logs, reduced once: its profile, a bounded sample and the key columns of every row.

A closed hour (past the compaction grace, whole inside the window) is digested once and stored
under `profiles/<model>/v<version>-<bins>/dt=<day>/hour=<HH>/`: `profile.json` (the counts,
and what the read set aside), `sample.parquet` (the hour's rows with the smallest hashes, every
column) and `keys.parquet` (request id, row, version and prediction of every row: what labels
join to). `profile.json` is written last, so a digest without it is never read. The bins
belong to one model version, so a new champion starts new digests.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq

from deployments.lambda_handler.contract import PREDICTION, PROBABILITY
from monitoring.logs.log_tables import smallest_hashes
from monitoring.logs.read_stats import BadLine, ReadStats
from monitoring.profiles.bins import ReferenceBins
from monitoring.profiles.profile import Profile, profile_of
from tasks.core.storage import filesystem, join_url, write_bytes

KEY_COLUMNS = ("request_id", "row", "timestamp", "model_version", PREDICTION, PROBABILITY)
PROFILE, SAMPLE, KEYS = "profile.json", "sample.parquet", "keys.parquet"


@dataclass
class HourDigest:
    """What the monitor keeps of one hour (or of the part of it inside a window).

    A stored digest keeps its sample as the stored Parquet bytes until it is asked for, so a
    week of hours holds a week of compressed samples, not a week of decoded ones.
    """

    profile: Profile
    sample_data: pa.Table | bytes
    keys: pa.Table
    stats: ReadStats

    @property
    def sample(self) -> pa.Table:
        """The hour's sampled rows, every column."""
        if isinstance(self.sample_data, bytes):
            return pq.read_table(io.BytesIO(self.sample_data))
        return self.sample_data


def digest_rows(table: pa.Table, stats: ReadStats, bins: ReferenceBins, sample_rows: int) -> HourDigest:
    """Digest an hour's flat rows (as the log reader returns them) against the bins."""
    keys = table.select([name for name in KEY_COLUMNS if name in table.column_names])
    return HourDigest(profile_of(table, bins), smallest_hashes(table, sample_rows), keys, stats)


def digest_folder(root: str, model: str, version: str, bins: ReferenceBins, hour: datetime, tag: str) -> str:
    """Where an hour's digest is stored (`tag` names what the rows include, e.g. batch rows or not)."""
    return join_url(
        root,
        "profiles",
        model,
        f"v{version}-{bins.fingerprint}-{tag}",
        f"dt={hour:%Y-%m-%d}",
        f"hour={hour:%H}",
    )


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def store_digest(folder: str, digest: HourDigest) -> None:
    """Write the sample, the keys, then the profile with the read's figures (the marker of a whole digest)."""
    write_bytes(join_url(folder, SAMPLE), _parquet(digest.sample))
    write_bytes(join_url(folder, KEYS), _parquet(digest.keys))
    stats = asdict(digest.stats)
    body = {"profile": digest.profile.to_dict(), "stats": stats}
    write_bytes(join_url(folder, PROFILE), json.dumps(body, separators=(",", ":")).encode())


def load_digest(folder: str, bins: ReferenceBins) -> HourDigest | None:
    """A stored digest of these bins; None when there is none. Raises when one is there but unreadable."""
    fs, path = filesystem(folder)
    marker = f"{path}/{PROFILE}"
    if not fs.exists(marker):
        return None
    body = json.loads(fs.cat_file(marker))
    profile = Profile.from_dict(body["profile"])
    if profile.fingerprint != bins.fingerprint:
        msg = f"digest of bins {profile.fingerprint}, not {bins.fingerprint}"
        raise ValueError(msg)
    raw = dict(body["stats"])
    samples = [BadLine(**item) for item in raw.pop("samples")]
    stats = ReadStats(**raw, samples=samples)
    sample = fs.cat_file(f"{path}/{SAMPLE}")
    pq.read_metadata(io.BytesIO(sample))  # a corrupt sample is found now, while its hour can be re-read
    keys = pq.read_table(io.BytesIO(fs.cat_file(f"{path}/{KEYS}")))
    if keys.num_rows != profile.rows:
        msg = f"keys hold {keys.num_rows} rows, the profile {profile.rows}"
        raise ValueError(msg)
    return HourDigest(profile, sample, keys, stats)
