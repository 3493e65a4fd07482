"""Bytes on disk: what the drive and the OSS stand-in keep, read a chunk at a time.

A file's bytes are one file or several (a multipart object keeps its parts as they came), in
the emulator's storage directory; nothing holds a whole file in memory.
"""

from collections.abc import Iterator
from dataclasses import dataclass
import hashlib
import pathlib

CHUNK = 256 * 1024


def sha1_hex(data: bytes) -> str:
    """Upper-case SHA1, as 115 writes it."""
    return hashlib.sha1(data, usedforsecurity=False).hexdigest().upper()


@dataclass
class Blob:
    """Bytes on disk, in one file or several (a multipart object keeps its parts as they came)."""

    segments: list[tuple[pathlib.Path, int]]

    @property
    def size(self) -> int:
        """The number of bytes."""
        return sum(size for _, size in self.segments)

    def chunks(self, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        """The bytes from `start` (`length` of them, else to the end), at most CHUNK at a time."""
        left = self.size - start if length is None else length
        for path, size in self.segments:
            if left <= 0:
                return
            if start >= size:
                start -= size
                continue
            with path.open("rb") as stream:
                stream.seek(start)
                while left > 0 and (chunk := stream.read(min(CHUNK, left))):
                    left -= len(chunk)
                    yield chunk
            start = 0

    def read_all(self) -> bytes:
        """All bytes (for tests of small files)."""
        return b"".join(self.chunks())

    def range_sha1(self, start: int, end: int) -> str:
        """Upper SHA1 of the bytes start..end, inclusive."""
        digest = hashlib.sha1(usedforsecurity=False)
        for chunk in self.chunks(start, end - start + 1):
            digest.update(chunk)
        return digest.hexdigest().upper()

    def write_bytes(self, data: bytes) -> None:
        """Replace the bytes (tests corrupt a stored file with it; its SHA1 key stays)."""
        first = self.segments[0][0]
        for path, _ in self.segments[1:]:
            path.unlink(missing_ok=True)
        first.write_bytes(data)
        self.segments = [(first, len(data))]

    def discard(self) -> None:
        """Delete the files."""
        for path, _ in self.segments:
            path.unlink(missing_ok=True)
