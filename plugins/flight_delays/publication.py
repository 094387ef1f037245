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
import socket
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

#: ``publish``'s default base: the folder's latest publication when the writer publishes.
LATEST = object()
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


def writer_id() -> str:
    """Who is writing, for a manifest and a conflict's message: the Airflow task (DAG, run, task, try)
    when called in one, else the host and process."""
    try:
        from airflow.sdk import get_current_context

        ti = get_current_context()["ti"]
        return f"task {ti.dag_id}/{ti.run_id}/{ti.task_id} try {ti.try_number}"
    except (ImportError, RuntimeError):  # no Airflow here (a Spark job), or not inside a task
        return f"{socket.gethostname()} pid {os.getpid()}"


def write_whole(path: ObjectStoragePath, data: bytes) -> None:
    """Replace the one object ``path`` with ``data``: a reader sees the old bytes or the new, never part.

    On a local disk the bytes go to a temporary file beside ``path``, renamed over it; an object store
    stores an object whole when its upload completes (s3fs uploads on close).
    """
    if path.protocol == "file":
        _place_locally(Path(path.path), data, os.replace)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


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
            meta: Mapping | None = None, based_on: Publication | object | None = LATEST,
            carry: tuple[str, ...] = (), written: Mapping[str, str] | None = None) -> Publication:
    """Publish ``files`` (name → content) as the next version of ``folder``; return the publication.

    :param based_on: the publication this one follows (its version + 1; None: the folder was never
        published), when the new one is derived from what it read (a validation's verdict on the data
        it validated, features from the raw data of their run): if anyone published after it, this one
        fails with :class:`PublicationConflict` instead of replacing newer data. Default
        (:data:`LATEST`): the latest publication, read now.
    :param carry: names of ``based_on``'s files that the new publication names too, unchanged (not
        copied: the data file a verdict is about).
    :param written: files this writer already stored under ``folder`` by other means (name → stored
        name, which may be a path below ``folder``: the part files Spark wrote into a folder of the
        writer's own); named like the others, and removed like them if the publication fails.
    :raises PublicationConflict: another writer published the version this one was writing; its
        files are removed, the winner's publication is untouched.
    """
    written = dict(written or {})
    if not files and not carry and not written:
        raise PublicationError(f"{folder}: a publication needs at least one file")
    if carry and not isinstance(based_on, Publication):
        raise PublicationError(f"{folder}: carrying files {list(carry)} needs the publication they are from")
    current = latest(folder)
    base = current if based_on is LATEST else based_on
    version = base.version + 1 if base else 1
    token = secrets.token_hex(6)
    stored = {name: f"{token}-{name}" for name in files}
    for name in carry:
        base.path(folder, name)  # raises, naming what it has, when the base has no such file
    carried = {name: base.files[name] for name in carry}
    folder.mkdir(parents=True, exist_ok=True)
    try:
        if current is not None and current.version >= version:
            raise _conflict(folder, version, writer)
        for name, content in files.items():
            with (folder / stored[name]).open("wb") as out:
                content(out) if callable(content) else out.write(content)
        publication = Publication(version=version, files={**carried, **written, **stored}, writer=writer,
                                  published_at=datetime.now(timezone.utc).isoformat(), meta=dict(meta or {}))
        manifest = folder / MANIFESTS / _manifest_name(version)
        try:
            _create_exclusively(manifest, json.dumps(asdict(publication), indent=2, sort_keys=True).encode())
        except OSError as exc:  # FileExistsError among them
            if not _refused_as_existing(exc):
                raise
            raise _conflict(folder, version, writer) from exc
    except BaseException:
        for name in [*stored.values(), *written.values()]:
            (folder / name).unlink(missing_ok=True)
        raise
    _remove_unnamed(folder, keep=[publication, current])
    return publication


def _conflict(folder: ObjectStoragePath, version: int, writer: str) -> PublicationConflict:
    """The error of a writer that lost version ``version`` of ``folder`` to another writer."""
    winner = _read(folder, version)
    return PublicationConflict(
        f"{folder}: version {version} was published by {winner.writer} at {winner.published_at} "
        f"while {writer} was writing it; nothing of {writer}'s is kept")


def _create_exclusively(path: ObjectStoragePath, data: bytes) -> None:
    """Create ``path`` holding ``data`` whole, only if it does not exist (:class:`FileExistsError`, or
    on S3 a 412, when it does).

    Locally the bytes go to a temporary file that is then hard-linked to ``path`` (``link`` fails on
    an existing name): an ``O_EXCL`` create would show a reader, or the losing writer, the empty file
    before its bytes. On S3 one conditional ``PUT`` (``If-None-Match: *``) stores it whole.
    """
    if path.protocol == "file":
        _place_locally(Path(path.path), data, os.link)
    elif path.protocol in ("s3", "s3a"):
        path.fs.pipe_file(path.path, data, mode="create")
    else:
        raise PublicationError(f"{path}: publishing needs a create-only write, which this project does "
                               f"on a local disk and on S3, not on {path.protocol!r}")


def _place_locally(target: Path, data: bytes, place: Callable[[str, Path], None]) -> None:
    """Write ``data`` to a temporary file beside ``target``, then ``place`` it there: ``os.replace``
    (over what is there) or ``os.link`` (fails if the name exists). The temporary file never stays."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; other users (Spark, MLflow) read these files
        place(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _refused_as_existing(exc: BaseException) -> bool:
    """Whether a create-only write failed because the object exists: ``FileExistsError`` on a local
    disk; on S3 a 412 ``PreconditionFailed`` (which s3fs maps to ``FileExistsError`` only when the
    server names the condition, as AWS does and SeaweedFS does not)."""
    if isinstance(exc, FileExistsError):
        return True
    response = getattr(exc.__cause__, "response", None) or {}
    return response.get("Error", {}).get("Code") == "PreconditionFailed"


def _remove_unnamed(folder: ObjectStoragePath, keep: list[Publication | None]) -> None:
    """Remove what ``folder`` holds, older than :data:`ORPHAN_GRACE`, that none of the ``keep``
    publications names (superseded ones, and what writers killed before their manifest left): files,
    and sub-folders no named file is in (a writer's folder of part files, removed whole)."""
    named = {stored.split("/", 1)[0]  # a file, or the sub-folder a named file is in
             for publication in keep if publication for stored in publication.files.values()}
    cutoff = datetime.now(timezone.utc) - ORPHAN_GRACE

    def old(path: ObjectStoragePath) -> bool:
        modified = path.fs.modified(path.path)
        return (modified if modified.tzinfo else modified.replace(tzinfo=timezone.utc)) < cutoff

    folder.fs.invalidate_cache(folder.path)
    for entry in folder.iterdir():
        if entry.name == MANIFESTS or entry.name in named:
            continue
        if entry.is_file():
            if old(entry):
                entry.unlink(missing_ok=True)
        elif entry.is_dir():
            prefix = folder.path.rstrip("/") + "/"
            if all(old(folder / key.removeprefix(prefix)) for key in entry.fs.find(entry.path)):
                entry.fs.rm(entry.path, recursive=True)
