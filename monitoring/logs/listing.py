"""List the objects of one partition without following links or opening anything odd.

A symbolic link planted in a local partition (to a system file, to another folder) is set
aside unread: its target is never listed, read or copied into a quarantine sample. So are
entries that are not regular files (a FIFO would block a read forever, a folder cannot be
read). S3 has no links; there every object is a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fsspec.spec import AbstractFileSystem

LINK = "symbolic link, not followed"
NOT_A_FILE = "not a regular file"


@dataclass
class Listing:
    """The readable objects of a partition, and the entries set aside with the reason."""

    files: list[str] = field(default_factory=list)
    set_aside: list[tuple[str, str]] = field(default_factory=list)


def is_local(fs: AbstractFileSystem) -> bool:
    """Whether the filesystem is the local disk (where links exist)."""
    return "file" in fs.protocol


def _linked_folder(root: str, relative: str) -> str | None:
    """The first folder between the root and the partition that is a symbolic link, if any."""
    current = root.rstrip("/")
    for part in relative.strip("/").split("/"):
        current = f"{current}/{part}"
        if Path(current).is_symlink():
            return current
    return None


def list_partition(fs: AbstractFileSystem, root: str, relative: str, suffix: str) -> Listing:
    """Entries of `<root>/<relative>` whose names end with `suffix` (hidden ones left out), sorted."""
    listing = Listing()
    if is_local(fs):
        linked = _linked_folder(root, relative)
        if linked is not None:
            listing.set_aside.append((linked, LINK))
            return listing
    try:
        entries = fs.ls(f"{root.rstrip('/')}/{relative.strip('/')}", detail=True)
    except (FileNotFoundError, NotADirectoryError):
        return listing
    for entry in sorted(entries, key=lambda item: str(item["name"])):
        path = str(entry["name"]).rstrip("/")
        name = path.rsplit("/", 1)[-1]
        if not name.endswith(suffix) or name.startswith("."):
            continue
        if entry.get("islink"):
            listing.set_aside.append((path, LINK))
        elif entry.get("type") != "file":
            listing.set_aside.append((path, NOT_A_FILE))
        else:
            listing.files.append(path)
    return listing
