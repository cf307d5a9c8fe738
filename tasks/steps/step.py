"""`step`: how every task here is declared, a Prefect task that never caches its result.

Each task reads state that changes between runs (logs, the registry, the live alias), so a
cached result would be a stale one. `@step` and `@step(retries=...)` take Prefect's task options.
"""

from __future__ import annotations

from functools import partial

from prefect import task
from prefect.cache_policies import NO_CACHE

step = partial(task, cache_policy=NO_CACHE)
