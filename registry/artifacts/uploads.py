"""Django upload handler that hashes each file while spooling it to the artifact disk, with a size limit, and the
one function upload views use to read a multipart body: whole, or refused with nothing left on disk."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest, UnreadablePostError
from django.http.multipartparser import MultiPartParserError

from registry.artifacts.storage import HashingWriter, SpooledUpload
from registry.errors import DomainError, InsufficientStorage, UploadTooLarge


class MalformedUpload(DomainError):
    """A multipart body that does not parse, or did not arrive whole."""

    code = "MALFORMED_REQUEST"


class HashedUploadedFile(UploadedFile):
    """An uploaded file already hashed and sniffed; `spooled` is handed to the artifact store."""

    def __init__(self, spooled: SpooledUpload, name: str, content_type: str | None, charset: str | None) -> None:
        super().__init__(open(spooled.path, "rb"), name, content_type, spooled.size, charset)
        self.spooled = spooled

    def temporary_file_path(self) -> str:
        return self.spooled.path

    def close(self) -> None:
        """Close and remove the spool file unless the artifact store already consumed it."""
        try:
            self.file.close()
        finally:
            self.spooled.discard()


class HashingUploadHandler(FileUploadHandler):
    """Spool every multipart file to disk while hashing it; too large marks the handler and stops parsing.

    Django builds one handler per request, so its flags say how that request's body went: `too_large` (a file
    passed the limit), `no_space` (the disk filled while spooling) and `interrupted` (a file part started and never
    reached its closing boundary).
    """

    chunk_size = 256 * 1024

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.writer: HashingWriter | None = None
        self.too_large = False
        self.no_space: InsufficientStorage | None = None
        self.interrupted = False
        self.boundary = b""

    def handle_raw_input(self, input_data: Any, META: Any, content_length: int, boundary: bytes,
                         encoding: str | None = None) -> None:
        """Note the body's boundary and let Django parse it."""
        self.boundary = boundary
        return None

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.abort()  # a part Django dropped without completing it (it cannot happen today; never leak it)
        self.writer = HashingWriter()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        assert self.writer is not None  # Django calls new_file first
        try:
            self.writer.write(raw_data)
        except UploadTooLarge:
            self.writer = None  # the writer removed its file
            self.too_large = True
            # Read the rest of the body (at most the declared length, which check_upload_length bounds) so that
            # the client, still sending, receives the 413 instead of a reset connection.
            raise StopUpload(connection_reset=False)
        except InsufficientStorage as exc:  # the writer removed its file; read the rest so the client hears 507
            self.writer = None
            self.no_space = exc
            raise StopUpload(connection_reset=False) from None
        return None

    def file_complete(self, file_size: int) -> HashedUploadedFile:
        assert self.writer is not None
        spooled = self.writer.finish()
        self.writer = None
        return HashedUploadedFile(spooled, self.file_name, self.content_type, self.charset)

    def upload_interrupted(self) -> None:
        """Django's signal that the body ended inside a file part: remove what that part spooled."""
        self.interrupted = True
        self.abort()

    def abort(self) -> None:
        """Remove the spool file of the part being received, if any."""
        if self.writer is not None:
            self.writer.abort()
            self.writer = None


def _handler(request: Any) -> HashingUploadHandler | None:
    return next((h for h in request.upload_handlers if isinstance(h, HashingUploadHandler)), None)


def _declared(request: Any) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _discard(files: Any) -> None:
    for _, uploads in files.lists():
        for upload in uploads:
            upload.close()


def received_files(request: Any, field: str) -> list[HashedUploadedFile]:
    """Parse `request`'s multipart body (a Django or DRF request) and return its `field` files.

    Refuse, with every spooled file removed: a body that does not parse or ends early (400 MALFORMED_REQUEST), one
    with no part under its boundary, a `field` part that is not a file, a file over the limit (413).
    """
    handler = _handler(request)
    try:
        fields, files = request.POST, request.FILES
    except BaseException as exc:
        # Django closes the files it completed; the part being received when the body failed is ours to remove.
        if handler is not None:
            handler.abort()
        if isinstance(exc, UnreadablePostError):
            raise MalformedUpload("The request body ended before it was complete.") from None
        if isinstance(exc, MultiPartParserError):
            raise MalformedUpload(f"The multipart body does not parse: {exc}") from None
        raise
    problem = _refusal(request, handler, fields, files, field)
    if problem is not None:
        _discard(files)
        raise problem
    return files.getlist(field)


def _refusal(request: Any, handler: HashingUploadHandler | None, fields: Any, files: Any, field: str
             ) -> DomainError | None:
    if handler is not None and handler.too_large:
        return UploadTooLarge(f"Upload exceeds the limit of {settings.MAX_UPLOAD_BYTES} bytes.")
    if handler is not None and handler.no_space is not None:
        return handler.no_space
    if handler is not None and handler.interrupted:
        return MalformedUpload("The multipart body ended inside a file part (its closing boundary never came).")
    # An empty form is the close delimiter alone ("--" boundary "--" and line breaks); anything longer that yields
    # no part at all was written under another boundary, or does not hold parts.
    if handler is not None and not fields and not files and _declared(request) > len(handler.boundary) + 8:
        return MalformedUpload("The multipart body holds no part delimited by the boundary its Content-Type names.")
    if field in fields:
        return MalformedUpload(f"Each '{field}' part must be a file (a part with a filename).")
    return None
