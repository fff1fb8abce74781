"""Scratch warehouses of `hydra backtest --data PATH`: one per content, kept within a size.

A bar file, or a folder of one file per table, loads into a warehouse of its own (never among
the feeds'), named by its content: the table and size of each file and a BLAKE2b hash of their
bytes, read a block at a time, so files of any size are hashed in bounded memory, and the same
content under any name reuses the warehouse it loaded into. A warehouse is loaded under a
hidden name and renamed into place once loaded: a load cut short is never taken for a loaded one.

The folder is kept within a size (`backtest.scratch_limit_gb`): the least recently used files
go first (a reuse counts as a use), never the ones the caller is using, nor one another
process holds open (DuckDB locks the file it has open; a file it locks is left alone).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Part of every content key: bumped when the way a file loads changes (its columns, its rules,
# when its facts are known), so a scratch warehouse loaded the old way is never reused.
LOAD_FORMAT = b"tables-3"
HASH_BLOCK = 1 << 20
MAX_STEM = 60
SUFFIX = ".duckdb"
WAL = ".wal"


def content_key(files: Sequence[tuple[str, Path]], settings: str = "") -> str:
    """A hash of LOAD_FORMAT, the `settings` the load depends on, and each file's table (its
    label), size and bytes, as 20 hex digits: not of the files' names."""
    digest = hashlib.blake2b(LOAD_FORMAT, digest_size=10)
    # Each part is preceded by its length, so no two different contents can run together alike.
    digest.update(len(files).to_bytes(8, "little"))
    for part in (settings.encode(), *(label.encode() for label, _ in files)):
        digest.update(len(part).to_bytes(8, "little") + part)
    for _, path in files:
        digest.update(path.stat().st_size.to_bytes(8, "little"))
        with path.open("rb") as stream:
            while block := stream.read(HASH_BLOCK):
                digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ScratchFolder:
    folder: Path
    limit_bytes: int

    def find(self, key: str) -> Path | None:
        """The loaded scratch warehouse of the content `key`, if one is kept."""
        return next(iter(sorted(self.folder.glob(f"*-{key}{SUFFIX}"))), None)

    def named(self, stem: str, key: str) -> Path:
        return self.folder / f"{stem[:MAX_STEM]}-{key}{SUFFIX}"

    @contextmanager
    def loading(self, target: Path) -> Iterator[Path]:
        """A hidden file to load `target` in; renamed to `target` when the block succeeds,
        removed when it fails."""
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.folder / f".{target.stem}.{uuid.uuid4().hex[:8]}.loading{SUFFIX}"
        try:
            yield partial
            os.replace(partial, target)
        finally:
            _remove(partial)

    @contextmanager
    def copy_of(self, scratch: Path) -> Iterator[Path]:
        """A copy of `scratch` for one run, removed after it: runs of one file can go side by
        side, and the scratch stays as it was loaded."""
        copy = scratch.with_name(f"{scratch.stem}.run-{uuid.uuid4().hex[:8]}{SUFFIX}")
        try:
            shutil.copyfile(scratch, copy)
            yield copy
        finally:
            _remove(copy)

    def bound(self, keep: Collection[Path]) -> list[Path]:
        """Remove the least recently used files until the folder fits its limit; returns them."""
        units = _units(self.folder)
        total = sum(size for size, _, _ in units.values())
        removed = []
        for database, (size, _, files) in sorted(units.items(), key=lambda unit: unit[1][1]):
            if total <= self.limit_bytes:
                break
            if database in keep or _in_use(database):
                continue
            for file in files:
                file.unlink(missing_ok=True)
            total -= size
            removed.append(database)
        return removed


def touch(path: Path) -> None:
    """Mark `path` used now: the folder's bound removes the least recently used first."""
    os.utime(path)


def _units(folder: Path) -> dict[Path, tuple[int, float, list[Path]]]:
    """Each database file of `folder` with its write-ahead log: (bytes, last use, files)."""
    units: dict[Path, tuple[int, float, list[Path]]] = {}
    for file in folder.iterdir() if folder.is_dir() else ():
        database = file.with_name(file.name.removesuffix(WAL))
        if not database.name.endswith(SUFFIX) or not file.is_file():
            continue
        stat = file.stat()
        size, used, files = units.get(database, (0, 0.0, []))
        units[database] = (size + stat.st_size, max(used, stat.st_mtime), [*files, file])
    return units


def _in_use(database: Path) -> bool:
    """Whether another process holds `database` open through DuckDB (which locks it)."""
    try:
        with database.open("r+b") as stream:
            fcntl.lockf(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):
        return True
    except FileNotFoundError:
        return False
    return False


def _remove(database: Path) -> None:
    database.unlink(missing_ok=True)
    database.with_name(database.name + WAL).unlink(missing_ok=True)
