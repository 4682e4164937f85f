"""Django upload handler that hashes each file while spooling it to the artifact disk, with a size limit."""

from __future__ import annotations

from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload

from registry.artifacts.storage import HashingWriter, SpooledUpload
from registry.errors import UploadTooLarge


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
    """Spool every multipart file to disk while hashing it; too large marks the request and stops parsing."""

    chunk_size = 256 * 1024

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.writer = HashingWriter()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        try:
            self.writer.write(raw_data)
        except UploadTooLarge:
            if self.request is not None:
                self.request.stratum_upload_too_large = True
            raise StopUpload(connection_reset=False)
        return None

    def file_complete(self, file_size: int) -> HashedUploadedFile:
        spooled = self.writer.finish()
        return HashedUploadedFile(spooled, self.file_name, self.content_type, self.charset)

    def upload_interrupted(self) -> None:
        writer = getattr(self, "writer", None)
        if writer is not None:
            writer.abort()
