"""Content-addressed artifact store over Django's storage API: stream in, hash while writing, dedupe by SHA-256."""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import tempfile
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import quote

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.db import IntegrityError, transaction

from registry.artifacts.formats import SNIFF_BYTES, detect_format
from registry.errors import InsufficientStorage, StorageUnavailable, UploadTooLarge, out_of_space, store_unreachable
from registry.models import Blob

CHUNK = 1024 * 1024
NO_SPACE_MESSAGE = "The artifact store is out of space; nothing of this upload was kept. Try again later."
UNAVAILABLE_MESSAGE = "The artifact store did not answer; nothing of this upload was kept. Retry in a moment."
READ_UNAVAILABLE_MESSAGE = "The artifact store did not answer; retry in a moment."


def artifact_storage() -> Storage:
    """Return the configured artifact storage backend."""
    return storages["artifacts"]


def spool_dir() -> str:
    """Return the folder where uploads are spooled while they are hashed (same disk as the store)."""
    path = os.path.join(settings.ARTIFACT_ROOT, "tmp")
    os.makedirs(path, exist_ok=True)
    return path


WORK_DIR_PREFIX = "stratum-"


def work_dir(purpose: str) -> tempfile.TemporaryDirectory:
    """Return a scratch folder for a job (removed when its `with` block ends, swept by `temp_sweep` if the process
    dies first)."""
    return tempfile.TemporaryDirectory(prefix=f"{WORK_DIR_PREFIX}{purpose}-")


def _last_touched(path: str) -> float:
    """The newest modification time of a file, or of a folder and anything in it."""
    newest = os.lstat(path).st_mtime
    if os.path.isdir(path) and not os.path.islink(path):
        for folder, dirs, files in os.walk(path):
            for name in dirs + files:
                try:
                    newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime)
                except FileNotFoundError:
                    pass
    return newest


def temp_sweep(*, older_than: float | None = None) -> list[str]:
    """Remove spool files and job scratch folders untouched for `older_than` seconds (STRATUM_TEMP_MAX_AGE_SECONDS):
    what a killed process left behind. Anything in use is written to, so it is younger; return what was removed."""
    import shutil

    age = float(getattr(settings, "STRATUM_TEMP_MAX_AGE_SECONDS", 3600) if older_than is None else older_than)
    cutoff = time.time() - age
    candidates = [os.path.join(spool_dir(), name) for name in os.listdir(spool_dir())]
    scratch = tempfile.gettempdir()
    candidates += [os.path.join(scratch, name) for name in os.listdir(scratch) if name.startswith(WORK_DIR_PREFIX)]
    removed = []
    for path in candidates:
        try:
            if _last_touched(path) >= cutoff:
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        except FileNotFoundError:  # removed meanwhile by its owner
            continue
        removed.append(path)
    return removed


@dataclass
class SpooledUpload:
    """A fully received upload on local disk, with its hash, size and sniffed format."""

    path: str
    sha256: str
    size: int
    format: str

    def discard(self) -> None:
        """Remove the spool file unless the store already moved it into place."""
        _remove(self.path)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class HashingWriter:
    """Write chunks to a spool file while hashing them and enforcing the size limit.

    A writer dropped before `finish` or `abort` (a request that failed somewhere nobody expected) still removes its
    file when it is collected.
    """

    def __init__(self, max_bytes: int | None = None) -> None:
        self.max_bytes = settings.MAX_UPLOAD_BYTES if max_bytes is None else max_bytes
        fd, self.path = tempfile.mkstemp(prefix="upload-", dir=spool_dir())
        self._cleanup = weakref.finalize(self, _remove, self.path)
        self.file = os.fdopen(fd, "wb")
        self.hasher = hashlib.sha256()
        self.size = 0
        self.head = b""
        self.closed = False

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            self.abort()
            raise UploadTooLarge(f"Upload exceeds the limit of {self.max_bytes} bytes.")
        if len(self.head) < SNIFF_BYTES:
            self.head += chunk[: SNIFF_BYTES - len(self.head)]
        self.hasher.update(chunk)
        try:
            self.file.write(chunk)
        except OSError as exc:
            self._fail(exc)

    def finish(self) -> SpooledUpload:
        try:
            self.file.close()  # flushes the last buffered bytes: a full disk may show only here
        except OSError as exc:
            self._fail(exc)
        self.closed = True
        self._cleanup.detach()  # from here the SpooledUpload's holder owns the file
        return SpooledUpload(self.path, self.hasher.hexdigest(), self.size, detect_format(self.head))

    def abort(self) -> None:
        """Close and remove the spool file (again is harmless)."""
        try:
            if not self.closed:
                self.closed = True
                self.file.close()
        except OSError:  # the buffered tail could not be written (a full disk): the file goes anyway
            pass
        finally:
            _remove(self.path)

    def _fail(self, exc: OSError) -> None:
        self.abort()
        if out_of_space(exc):
            raise InsufficientStorage(NO_SPACE_MESSAGE) from exc
        raise exc


def spool_stream(stream: IO[bytes], *, max_bytes: int | None = None) -> SpooledUpload:
    """Copy a readable stream into a spool file in chunks; memory stays flat whatever the size."""
    writer = HashingWriter(max_bytes)
    try:
        while True:
            chunk = stream.read(CHUNK)
            if not chunk:
                break
            writer.write(chunk)
    except BaseException:
        writer.abort()
        raise
    return writer.finish()


class _SpoolFile(File):
    """A File whose temporary_file_path lets FileSystemStorage move it into place instead of copying."""

    def temporary_file_path(self) -> str:
        return self.name


def blob_name(sha256: str) -> str:
    """Return the storage name of the blob holding content `sha256`."""
    return f"blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def blob_bucket_uri(sha256: str) -> str | None:
    """Return `s3://bucket/key` of a blob when the artifact store is an S3 bucket, None on any other store."""
    storage = artifact_storage()
    bucket = getattr(storage, "bucket_name", None)  # django-storages' S3Storage settings, public attributes
    if not bucket:
        return None
    key = "/".join(part for part in (str(getattr(storage, "location", "") or "").strip("/"), blob_name(sha256))
                   if part)
    return f"s3://{bucket}/{key}"


def blob_claim(sha256: str, size: int) -> Blob:
    """Return the blob row of `sha256`, created if missing, locked (FOR NO KEY UPDATE) to the end of the caller's
    transaction and no longer marked unreferenced: the upload of that digest is in flight, and garbage collection,
    which locks what it deletes with SKIP LOCKED and deletes under that lock, passes it by until the upload's
    reference is committed. Call inside a transaction."""
    blob = Blob.objects.select_for_update(no_key=True).filter(pk=sha256).first()
    if blob is None:
        try:
            with transaction.atomic():
                return Blob.objects.create(sha256=sha256, size=size)
        except IntegrityError:  # a concurrent upload of the same content created it first (and has committed)
            blob = Blob.objects.select_for_update(no_key=True).get(pk=sha256)
    if blob.unreferenced_since is not None:
        Blob.objects.filter(pk=sha256).update(unreferenced_since=None)
        blob.unreferenced_since = None
    return blob


def blob_put(upload: SpooledUpload) -> Blob:
    """Store a spooled upload as a blob (once per content) and return it; the spool file is consumed.

    The blob's row is claimed first (`blob_claim`), then its file stored if the store lacks it: a collection that
    deleted the blob before the claim removed its file first, so the file is stored again here. An object store
    that does not answer (stopped, unreachable, failing) is StorageUnavailable (503): the claim rolls back, so no
    blob row is written, and S3 shows no object under the name (a multipart upload only appears when it completes).
    """
    try:
        storage = artifact_storage()
        name = blob_name(upload.sha256)
        with transaction.atomic():
            blob = blob_claim(upload.sha256, upload.size)
            try:
                present = storage.exists(name)
                if not present and _is_s3(storage):
                    # boto3's own file upload: parts read from the spool file as they are sent (flat memory, as fast
                    # as upload_file); the object appears whole or not at all, and a concurrent writer's is the same.
                    storage.bucket.Object(_s3_key(storage, name)).upload_file(
                        upload.path, ExtraArgs={"ContentType": "application/octet-stream"},
                        Config=storage.transfer_config)
                elif not present:
                    try:
                        with open(upload.path, "rb") as fh:
                            saved = storage.save(name, _SpoolFile(fh, name=upload.path))
                    except OSError as exc:
                        _remove_partial(storage, name, upload.size)
                        if out_of_space(exc):
                            raise InsufficientStorage(NO_SPACE_MESSAGE) from exc
                        raise
                    if saved != name:  # a concurrent writer stored the same content first
                        storage.delete(saved)
            except Exception as exc:
                if store_unreachable(exc):
                    raise StorageUnavailable(UNAVAILABLE_MESSAGE) from exc
                raise
        return blob
    finally:
        upload.discard()


def _remove_partial(storage: Storage, name: str, size: int) -> None:
    """Remove what a failed save left under a blob's name unless it is whole (a concurrent writer's copy)."""
    try:
        if storage.exists(name) and storage.size(name) != size:
            storage.delete(name)
    except OSError:
        pass


def _s3_backend() -> type | None:
    try:
        from storages.backends.s3 import S3Storage
    except ImportError:  # django-storages[s3] is a dependency; without it there is no S3 backend to detect
        return None
    return S3Storage


class S3BlobReader(io.RawIOBase):
    """A seekable, streaming reader of one S3 object: each read position is one ranged GET whose body is read as it
    arrives (django-storages' own S3File downloads the whole object first, into memory by default)."""

    def __init__(self, obj: Any, size: int, start: int = 0) -> None:
        super().__init__()
        self.obj, self.size, self.pos, self.body = obj, size, start, None
        self._request()

    def _request(self) -> None:
        self._release()
        if self.pos < self.size:
            self.body = self.obj.get(Range=f"bytes={self.pos}-")["Body"]

    def _release(self) -> None:
        if self.body is not None:
            self.body.close()
            self.body = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = {io.SEEK_SET: offset, io.SEEK_CUR: self.pos + offset, io.SEEK_END: self.size + offset}[whence]
        if target != self.pos or self.body is None:
            self.pos = max(target, 0)
            self._request()
        return self.pos

    def readinto(self, buffer: Any) -> int:
        if self.body is None:
            return 0
        data = self.body.read(len(buffer))
        buffer[: len(data)] = data
        self.pos += len(data)
        if not data:
            self._release()
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if self.body is None:
            return b""
        data = self.body.read(None if size is None or size < 0 else size)
        self.pos += len(data)
        return data

    def close(self) -> None:
        self._release()
        super().close()


def _is_s3(storage: Storage) -> bool:
    backend = _s3_backend()
    return backend is not None and isinstance(storage, backend)


def _s3_key(storage: Any, name: str) -> str:
    """The object key of a storage name under the S3 backend's `location` prefix."""
    return posixpath.join(storage.location, name) if storage.location else name


def blob_open(blob: Blob, *, start: int = 0) -> IO[bytes]:
    """Open a blob's bytes for reading (positioned at `start`). From S3 the bytes stream as they are read, and an
    object store that does not answer is StorageUnavailable (503) here, before any byte of a response is sent."""
    storage = artifact_storage()
    try:
        if _is_s3(storage):
            return io.BufferedReader(S3BlobReader(storage.bucket.Object(_s3_key(storage, blob.storage_name)),
                                                  blob.size, start), CHUNK)
        fh = storage.open(blob.storage_name, "rb")
        if start:
            fh.seek(start)
        return fh
    except Exception as exc:
        if store_unreachable(exc):
            raise StorageUnavailable(READ_UNAVAILABLE_MESSAGE) from exc
        raise


def direct_download_url(blob: Blob, *, filename: str, content_type: str) -> str | None:
    """A short-lived presigned URL that downloads `blob` straight from the object store (served as `filename`),
    when STRATUM_DIRECT_DOWNLOADS is on and the store can sign one; None means: stream it through Stratum.

    Call it only where the bytes would otherwise be streamed, after every permission and quarantine check."""
    if not settings.STRATUM_DIRECT_DOWNLOADS:
        return None
    storage = artifact_storage()
    if not _is_s3(storage):
        return None
    disposition = f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}"
    try:
        return storage.url(blob.storage_name, expire=settings.STRATUM_DIRECT_DOWNLOAD_SECONDS,
                           parameters={"ResponseContentDisposition": disposition,
                                       "ResponseContentType": content_type})
    except Exception as exc:
        if store_unreachable(exc):
            raise StorageUnavailable(READ_UNAVAILABLE_MESSAGE) from exc
        raise


def iter_range(fh: IO[bytes], start: int, length: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
    """Yield `length` bytes of `fh` from `start` in chunks, closing it at the end."""
    try:
        fh.seek(start)
        remaining = length
        while remaining > 0:
            data = fh.read(min(chunk, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data
    finally:
        fh.close()
