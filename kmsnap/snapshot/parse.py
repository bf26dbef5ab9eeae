"""The one parser of a snapshot file's bytes, with the one size limit: every reader uses it.

The store's loader, the git diff driver and ``kmsnap log``'s broken-file recovery all read a
file through ``parse_file``, so a file one of them accepts the others accept too. The bytes are
untrusted (a pull request, a branch): the size is bounded, the text must be UTF-8, and what is
not in the canonical form goes through the strict loader (``kmsnap.snapshot.strict``).
"""

from __future__ import annotations

from typing import IO, Any

from kmsnap.errors import SnapshotError

__all__ = ["MAX_FILE_BYTES", "check_size", "parse_file", "read_bounded"]

# One snapshot file may be at most this big (a catalog's biggest file is a few MiB).
MAX_FILE_BYTES = 64 * 1024 * 1024


def check_size(name: str, size: int, max_bytes: int = MAX_FILE_BYTES) -> None:
    """SnapshotError when a file of ``size`` bytes is too big to read."""
    if size > max_bytes:
        raise SnapshotError(f"file larger than {max_bytes} bytes ({size} bytes; refused "
                            "before reading it)", path=name)


def read_bounded(handle: IO[bytes], expected: int, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """At most ``max_bytes + 1`` bytes of an open file whose size was ``expected`` (its
    ``fstat``): one more than that is asked for first, so a file as big as it said is read in
    one buffer of its own size, not one of ``max_bytes`` (a 64 MiB allocation per file was a
    tenth of a diff's time); a file that grew since is read on up to the bound."""
    data = handle.read(min(max(expected, 0), max_bytes) + 1)
    if len(data) > expected and len(data) <= max_bytes:
        data += handle.read(max_bytes + 1 - len(data))
    return data


def parse_file(data: bytes, name: str, *, max_bytes: int = MAX_FILE_BYTES) -> Any:
    """The value of one snapshot file: the canonical fast path, else the strict safe loader.

    Any problem is a SnapshotError naming ``name`` (and the line, where there is one).
    """
    from kmsnap.snapshot import fastread  # late: the git driver starts once per file

    check_size(name, len(data), max_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise SnapshotError("not valid UTF-8 (a snapshot file is UTF-8 text)",
                            path=name, line=line) from None
    if "\r" in text:
        # A checkout with core.autocrlf: YAML reads CRLF as LF everywhere, and canonical
        # text has no raw line break inside a scalar, so this keeps the fast path sound.
        text = text.replace("\r\n", "\n")
    value = fastread.fast_load(text)
    if value is not None:
        return value
    from kmsnap.snapshot import strict as yamlsafe  # only for text not in the canonical form

    return yamlsafe.safe_load(data, name)
