"""Names in the environment or `.env` that look like settings but are none, with the closest known one."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

_NOT_SETTINGS_PREFIX = "MLOPS_TEST_"  # the test suite's own variables


def unknown_names(environment: Mapping[str, str], env_file: Path, known: frozenset[str]) -> list[str]:
    """One warning per `MLOPS_*` name in the environment or `.env` that is no setting.

    Settings ignore unknown names (a setting read by a newer version must not break an older
    one), so a misspelled name such as `MLOPS_DRIFT_TRESHOLD` would otherwise change nothing
    without a word; the warning names the closest known variable.
    """
    sources = dict.fromkeys(environment, "environment")
    if env_file.is_file():
        sources.update({name: str(env_file) for name in dotenv_values(env_file)})
    warnings = []
    for name, source in sorted(sources.items()):
        upper = name.upper()
        if not upper.startswith("MLOPS_") or upper.startswith(_NOT_SETTINGS_PREFIX) or upper in known:
            continue
        # compared without the prefix every name shares, which would make any two names look alike
        closest = difflib.get_close_matches(upper[6:], [name[6:] for name in known], n=1)
        hint = f"did you mean MLOPS_{closest[0]}?" if closest else "see the configuration table in README.md"
        warnings.append(f"{name} ({source}) is not a setting and is ignored; {hint}")
    return warnings
