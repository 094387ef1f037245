"""Publishing a set of files as one unit, on a local folder or an object store, without a rename.

S3 has no rename, so a partition cannot be written beside its final name and moved into place. A
publication of a folder (a partition) is instead:

1. its files, written under names of their own (``<token>-<name>``, the token unique to the
   attempt), which no reader looks at until step 2;
2. one manifest, ``_manifests/<version>.json``, naming those files, **created only if absent** and
   whole: a hard link of a complete temporary file on a local disk, one ``PUT`` with
   ``If-None-Match: *`` on S3 (s3fs). Version
   ``n + 1`` follows the latest version ``n`` the writer read; the latest manifest is the current
   publication.

Readers read the latest manifest, then only the files it names, so they never see a half-written
publication or a mix of two. Two writers of the same folder that both read version ``n`` race for
``n + 1``: one creates it, the other fails with :class:`PublicationConflict`, which names the folder
and the winner, and removes the files it wrote. A writer killed before its manifest leaves files that
no manifest names: invisible, and removed by a later publication of the folder. :func:`publish`
removes the files that neither the new nor the previous manifest names once they are older than
:data:`ORPHAN_GRACE` (so the previous publication's files stay for a reader that read it a moment
ago, and the files of a writer still writing the next version are not taken from under it).

Paths are :class:`airflow.sdk.ObjectStoragePath` (``file://`` or ``s3://``; the connection is the
path's ``conn_id``).
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

MANIFESTS = "_manifests"
#: Digits of a manifest's version in its name, so that names sort as versions do.
VERSION_DIGITS = 8
#: How old a file that no current manifest names must be before a publication removes it: longer
#: than any writer takes to write its files (the tasks' and jobs' timeouts are shorter).
ORPHAN_GRACE = timedelta(hours=6)

#: What a file of a publication is made of: its bytes, or a function that writes them to a binary file.
Content = bytes | Callable[[IO[bytes]], None]


class PublicationError(RuntimeError):
    """A publication could not be read or written; the message names the folder."""


class PublicationConflict(PublicationError):
    """Another writer published the folder first, from the same version this writer read."""


@dataclass(frozen=True)
class Publication:
    """One manifest: the files (``name`` → stored name) of a folder at ``version``, who wrote them."""

    version: int
    files: dict[str, str]
    writer: str
    published_at: str
    meta: dict = field(default_factory=dict)

    def path(self, folder: ObjectStoragePath, name: str) -> ObjectStoragePath:
        """Where this publication's file ``name`` is stored."""
        try:
            return folder / self.files[name]
        except KeyError:
            raise PublicationError(f"{folder}: version {self.version} has no file {name!r} "
                                   f"(it has {sorted(self.files)})") from None


def _manifest_name(version: int) -> str:
    return f"{version:0{VERSION_DIGITS}d}.json"


def _versions(folder: ObjectStoragePath) -> list[int]:
    manifests = folder / MANIFESTS
    folder.fs.invalidate_cache(manifests.path)  # s3fs caches listings: another writer's manifest is new
    if not manifests.exists():
        return []
    found = []
    for entry in manifests.iterdir():
        stem = entry.name.removesuffix(".json")
        if entry.name.endswith(".json") and stem.isdigit() and len(stem) == VERSION_DIGITS:
            found.append(int(stem))
    return sorted(found)


def _read(folder: ObjectStoragePath, version: int) -> Publication:
    path = folder / MANIFESTS / _manifest_name(version)
    try:
        document = json.loads(path.read_text())
        return Publication(**document)
    except (ValueError, TypeError) as exc:
        raise PublicationError(f"{path} is not a manifest this project wrote: {exc}") from exc


def latest(folder: ObjectStoragePath) -> Publication | None:
    """The current publication of ``folder``, or None when it was never published."""
    versions = _versions(folder)
    return _read(folder, versions[-1]) if versions else None


def publish(folder: ObjectStoragePath, files: Mapping[str, Content], *, writer: str,
            meta: Mapping | None = None) -> Publication:
    """Publish ``files`` (name → content) as the next version of ``folder``; return the publication.

    :raises PublicationConflict: another writer published the version this one was writing; its
        files are removed, the winner's publication is untouched.
    """
    if not files:
        raise PublicationError(f"{folder}: a publication needs at least one file")
    current = latest(folder)
    version = current.version + 1 if current else 1
    token = secrets.token_hex(6)
    stored = {name: f"{token}-{name}" for name in files}
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for name, content in files.items():
            with (folder / stored[name]).open("wb") as out:
                content(out) if callable(content) else out.write(content)
        publication = Publication(version=version, files=stored, writer=writer,
                                  published_at=datetime.now(timezone.utc).isoformat(), meta=dict(meta or {}))
        manifest = folder / MANIFESTS / _manifest_name(version)
        try:
            _create_exclusively(manifest, json.dumps(asdict(publication), indent=2, sort_keys=True).encode())
        except OSError as exc:  # FileExistsError among them
            if not _refused_as_existing(exc):
                raise
            winner = _read(folder, version)
            raise PublicationConflict(
                f"{folder}: version {version} was published by {winner.writer} at {winner.published_at} "
                f"while {writer} was writing it; nothing of {writer}'s is kept") from exc
    except BaseException:
        for name in stored.values():
            (folder / name).unlink(missing_ok=True)
        raise
    _remove_unnamed(folder, keep=[publication, current])
    return publication


def _create_exclusively(path: ObjectStoragePath, data: bytes) -> None:
    """Create ``path`` holding ``data`` whole, only if it does not exist (:class:`FileExistsError`, or
    on S3 a 412, when it does).

    Locally the bytes go to a temporary file that is then hard-linked to ``path`` (``link`` fails on
    an existing name): an ``O_EXCL`` create would show a reader, or the losing writer, the empty file
    before its bytes. On S3 one conditional ``PUT`` (``If-None-Match: *``) stores it whole.
    """
    if path.protocol == "file":
        target = Path(path.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.chmod(tmp, 0o644)
            os.link(tmp, target)
        finally:
            os.unlink(tmp)
    elif path.protocol in ("s3", "s3a"):
        path.fs.pipe_file(path.path, data, mode="create")
    else:
        raise PublicationError(f"{path}: publishing needs a create-only write, which this project does "
                               f"on a local disk and on S3, not on {path.protocol!r}")


def _refused_as_existing(exc: BaseException) -> bool:
    """Whether a create-only write failed because the object exists: ``FileExistsError`` on a local
    disk; on S3 a 412 ``PreconditionFailed`` (which s3fs maps to ``FileExistsError`` only when the
    server names the condition, as AWS does and SeaweedFS does not)."""
    if isinstance(exc, FileExistsError):
        return True
    response = getattr(exc.__cause__, "response", None) or {}
    return response.get("Error", {}).get("Code") == "PreconditionFailed"


def _remove_unnamed(folder: ObjectStoragePath, keep: list[Publication | None]) -> None:
    """Remove the files of ``folder`` older than :data:`ORPHAN_GRACE` that none of the ``keep``
    publications names (superseded ones, and what writers killed before their manifest left)."""
    named = {name for publication in keep if publication for name in publication.files.values()}
    cutoff = datetime.now(timezone.utc) - ORPHAN_GRACE
    folder.fs.invalidate_cache(folder.path)
    for entry in folder.iterdir():
        if entry.name == MANIFESTS or entry.name in named or not entry.is_file():
            continue
        modified = entry.fs.modified(entry.path)
        if (modified if modified.tzinfo else modified.replace(tzinfo=timezone.utc)) < cutoff:
            entry.unlink(missing_ok=True)
