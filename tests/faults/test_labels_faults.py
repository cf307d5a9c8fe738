"""Operator mistakes with labels, through the real `python -m monitoring.labels` and a real champion."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.handler import load_handler
from tests.support.labels import labels_command, zero_one_champion
from tests.support.traffic import instances_from_reference, send

MODEL = "labels-faults"


@pytest.fixture(scope="module")
def champion(tracking_uri: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    home = tmp_path_factory.mktemp("labels-home")
    return home, zero_one_champion(home, tracking_uri, MODEL)


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def answers(champion: tuple[Path, Path], storage: Path) -> list[dict]:
    app: ModuleType = load_handler(champion[1], storage)
    return send(app, instances_from_reference(champion[1], 6), per_request=2)


def _run(
    csv: Path, champion: tuple[Path, Path], storage: Path, tracking_uri: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return labels_command(csv, champion[0], storage, tracking_uri, MODEL, *extra)


def test_the_good_labels_are_stored_and_the_rest_reported_by_reason(
    champion: tuple[Path, Path], storage: Path, tracking_uri: str, answers: list[dict], tmp_path: Path
) -> None:
    first, second, third = (answer["request_id"] for answer in answers)
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "request_id,row,actual\n"
        f"{first},0,1\n"
        f"{first},1,0\n"
        f"{second},0,yes\n"  # not one of the classes 0, 1
        f"{second},1e20,1\n"  # no row index
        f"{third} ,0,1\n"  # stray space: no logged id
        f"{third},1,0\n"
        f"{third},1,1\n"  # the later line for the same row is the one stored
        "unknown-id,0,1\n"
    )
    result = _run(csv, champion, storage, tracking_uri)
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0].startswith(f"stored 3 of 8 labels from {csv} in 1 prediction-hour partitions under file://")
    assert out[1] == (
        "refused 5: 2 request_id and row not logged in the last 168 hours (first at line 6); "
        "1 actual is not one of the classes 0, 1 (first at line 4); "
        "1 repeated later in the file (the last one is stored) (first at line 7); "
        "1 row is not an integer from 0 to 999 (first at line 5)"
    )
    stored = [
        json.loads(line)
        for path in (storage / "labels").rglob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    assert sorted((item["request_id"], item["row"], item["actual"]) for item in stored) == sorted(
        [(first, 0, "1"), (first, 1, "0"), (third, 1, "1")]
    )
    sample = Path(out[2].rsplit(" ", 1)[-1].removeprefix("file://"))
    assert len(sample.read_text().splitlines()) == 5
    assert "Traceback" not in result.stderr


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "labels.csv"
    folder.mkdir()
    return folder


CASES = {
    "empty": (lambda path: path.write_bytes(b""), "is empty"),
    "binary": (lambda path: path.write_bytes(bytes(range(256)) * 4), "is not UTF-8 text"),
    "utf-16": (
        lambda path: path.write_text("request_id,row,actual\na,0,1\n", encoding="utf-16"),
        "is UTF-16 text",
    ),
    "ragged": (
        lambda path: path.write_text("request_id,row,actual\na,0,1\nb,1\n"),
        "line 3 has 2 fields, the header has 3",
    ),
    "header only": (lambda path: path.write_text("request_id,row,actual\n"), "has a header but no labels"),
    "no actual column": (lambda path: path.write_text("request_id,row\na,0\n"), "missing: actual"),
    "nothing logged": (
        lambda path: path.write_text("request_id,actual\nx,1\n"),
        "no labels stored: 1 of 1 refused",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_unusable_files_get_one_line_and_store_nothing(
    champion: tuple[Path, Path],
    storage: Path,
    tracking_uri: str,
    answers: list[dict],
    tmp_path: Path,
    case: str,
) -> None:
    write, message = CASES[case]
    csv = tmp_path / "labels.csv"
    write(csv)
    result = _run(csv, champion, storage, tracking_uri)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("error: "), result.stderr
    assert message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (storage / "labels").exists()


def test_a_folder_a_missing_file_and_a_bad_lookback_get_one_line(
    champion: tuple[Path, Path], storage: Path, tracking_uri: str, tmp_path: Path
) -> None:
    for csv, extra, message in [
        (_folder(tmp_path), (), "is a folder, not a labels file"),
        (tmp_path / "absent.csv", (), "no such labels file"),
        (tmp_path / "absent.csv", ("--since-hours", "0"), "--since-hours must be a positive number of hours"),
    ]:
        result = _run(csv, champion, storage, tracking_uri, *extra)
        assert (result.returncode, result.stdout) == (2, ""), result.stderr
        assert result.stderr.startswith("error: "), result.stderr
        assert message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not storage.exists()
