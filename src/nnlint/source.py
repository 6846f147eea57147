"""Reading a file's bytes into text, honouring PEP 263 encoding declarations."""

from __future__ import annotations

import io
import os
import tokenize
from dataclasses import dataclass


class UnreadableFile(Exception):
    """The file cannot be read at all (NNL002)."""


class TooLarge(Exception):
    """The file is larger than `max-file-size` (NNL005): `size` bytes."""

    def __init__(self, size: int):
        super().__init__(size)
        self.size = size


@dataclass
class DecodeError(Exception):
    """The bytes do not decode (NNL001): `line` is where the first bad byte sits."""

    message: str
    line: int
    column: int


def read_bytes(path: str, limit: int | None = None) -> bytes:
    """The file's bytes; `TooLarge` when it has more than `limit` (checked before reading)."""
    try:
        with open(path, "rb") as handle:
            if limit:
                size = os.fstat(handle.fileno()).st_size
                if size > limit:
                    raise TooLarge(size)
            data = handle.read()
    except FileNotFoundError:
        raise UnreadableFile("cannot read file: it does not exist (a dangling symlink?)") from None
    except PermissionError:
        raise UnreadableFile("cannot read file: permission denied") from None
    except IsADirectoryError:
        raise UnreadableFile("cannot read file: it is a directory") from None
    except OSError as exc:
        raise UnreadableFile(f"cannot read file: {exc.strerror or exc}") from None
    return reject_binary(data)


def reject_binary(data: bytes) -> bytes:
    if b"\x00" in data:
        raise UnreadableFile("cannot read file: it is binary (contains NUL bytes), not Python source")
    return data


def decode(data: bytes) -> str:
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        raise DecodeError(f"bad encoding declaration: {exc.msg}", exc.lineno or 1, 1) from None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DecodeError(
            f"cannot decode byte 0x{data[exc.start]:02x} as {encoding} "
            "(declare the encoding with a '# -*- coding: ... -*-' line)",
            line,
            column,
        ) from None
    except LookupError:
        raise DecodeError(f"unknown encoding {encoding!r}", 1, 1) from None
    return text.removeprefix("\ufeff")


def encode_like(original: bytes, text: str) -> bytes:
    """`text` in the encoding `original` was read in, byte-order mark included: for writing fixes back."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(original).readline)
    return text.encode(encoding)


def python_newlines(text: str) -> str:
    """CRLF, lone CR or a mix as "\n": lines then count the way Python's tokenizer counts them."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def too_large_message(size: int, limit: int) -> str:
    return (f"skipped: {size / 1024**2:.1f} MB is above max-file-size ({limit / 1024**2:.1f} MB); "
            "raise it with --max-file-size or [tool.nnlint] max-file-size, or exclude generated files")
