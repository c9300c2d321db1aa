"""Read and write nnkit tensor streams with numpy.

An nnkit stream is one or more .npy arrays back to back (`cat a.npy b.npy` is
a two-array stream). numpy's np.load reads one array from a file it can seek
in, so it fails on a pipe such as sys.stdin.buffer ("File or stream is not
seekable") and never sees the arrays after the first. This module reads every
array of a stream, strictly in order and without seeking, from a pipe, a
socket, a file object or a path; and writes arrays as nnkit writes them
(little-endian, C order, .npy version 1.0 unless the header needs 2.0).

    import sys, nnkit_stream
    for a in nnkit_stream.iter_arrays(sys.stdin.buffer):  # tensor-... | python3 me.py
        print(a.dtype, a.shape)
    nnkit_stream.write_array(sys.stdout.buffer, a)         # python3 me.py | tensor-...

Run as a script, it lists the arrays of a stream: python3 -m nnkit_stream [FILE]

It needs only numpy; copy this file next to your script or put its directory
on PYTHONPATH.
"""
import ast
import os
import sys

import numpy as np

__all__ = ["StreamError", "read_array", "iter_arrays", "read_all", "write_array", "write_all"]

MAGIC = b"\x93NUMPY"
MAX_HEADER = 1 << 20  # nnkit's limit too
# The dtypes nnkit's tools read (bool, ints, floats of 2-8 bytes).
NNKIT_CODES = {"b1", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8"}


class StreamError(ValueError):
    """The bytes are not a well-formed .npy stream (truncated, bad header...)."""


def _binary(f, mode):
    """A binary file object for f: a path, a text stream (use its .buffer) or
    a binary file object. Returns (file, close_when_done)."""
    if isinstance(f, (str, bytes, os.PathLike)):
        return open(f, mode), True
    if hasattr(f, "buffer") and not hasattr(f, "readinto1"):  # sys.stdin, sys.stdout
        return f.buffer, False
    return f, False


def _read_into(f, buf, what, offset):
    """Fills buf from f; fewer bytes than asked for is a truncated stream."""
    view = memoryview(buf)
    got = 0
    while got < len(buf):
        if hasattr(f, "readinto"):
            n = f.readinto(view[got:])
        else:
            chunk = f.read(len(buf) - got)
            n = len(chunk) if chunk else 0
            view[got:got + n] = chunk
        if not n:
            raise StreamError(f"truncated stream: {what} at byte {offset} has {got} of {len(buf)} bytes")
        got += n
    return buf


class _Reader:
    def __init__(self, f):
        self.f = f
        self.offset = 0  # bytes consumed, for messages

    def read(self, n, what):
        b = _read_into(self.f, bytearray(n), what, self.offset)
        self.offset += n
        return b

    def read_array(self):
        start = self.offset
        first = self.f.read(1)  # a clean end of stream is allowed only here
        if not first:
            return None
        self.offset += 1
        head = first + self.read(7, ".npy magic and version")
        if head[:6] != MAGIC:
            raise StreamError(f"not a .npy array at byte {start}: bad magic {bytes(head[:6])!r}")
        major = head[6]
        if major not in (1, 2, 3):
            raise StreamError(f"unsupported .npy version {major}.{head[7]} at byte {start}")
        size = self.read(2 if major == 1 else 4, ".npy header length")
        hlen = int.from_bytes(size, "little")
        if hlen > MAX_HEADER:
            raise StreamError(f".npy header of {hlen} bytes at byte {start} is larger than {MAX_HEADER}")
        text = bytes(self.read(hlen, ".npy header")).decode("utf-8" if major == 3 else "latin1")
        try:
            d = ast.literal_eval(text)
            dtype = np.lib.format.descr_to_dtype(d["descr"])
            shape = tuple(int(x) for x in d["shape"])
            fortran = bool(d["fortran_order"])
        except Exception as e:  # noqa: BLE001 - any bad header is a StreamError
            raise StreamError(f"bad .npy header at byte {start}: {text.strip()[:80]!r} ({e})") from None
        if dtype.hasobject:
            raise StreamError(f"object arrays (pickles) are not read, at byte {start}")
        if any(x < 0 for x in shape):
            raise StreamError(f"negative dimension in shape {shape} at byte {start}")
        count = 1
        for x in shape:
            count *= x
        data = self.read(count * dtype.itemsize, ".npy data")
        a = np.frombuffer(data, dtype=dtype, count=count)  # writable: data is a bytearray
        return a.reshape(shape, order="F" if fortran else "C")


def read_array(f):
    """The next array of the stream f (a binary file object such as
    sys.stdin.buffer), or None at a clean end of the stream. A stream that
    ends inside an array raises StreamError."""
    return _Reader(_binary(f, "rb")[0]).read_array()


def iter_arrays(f):
    """Yields every array of the stream f (a path or a binary file object such
    as sys.stdin.buffer), one at a time, so memory holds one array."""
    fb, close = _binary(f, "rb")
    try:
        r = _Reader(fb)
        while True:
            a = r.read_array()
            if a is None:
                return
            yield a
    finally:
        if close:
            fb.close()


def read_all(f):
    """Every array of the stream f, as a list."""
    return list(iter_arrays(f))


class _WriteOnly:
    """Hides the file descriptor from numpy, which would otherwise use
    ndarray.tofile and need a seekable file on some numpy versions."""

    def __init__(self, f):
        self.write = f.write


def write_array(f, a):
    """Appends array a to the stream f (a binary file object such as
    sys.stdout.buffer, or a path), as nnkit writes: little-endian, C order. The dtypes
    nnkit reads are bool, int8..int64, uint8..uint64, float16/32/64."""
    a = np.asarray(a)
    code = "b1" if a.dtype.kind == "b" else f"{a.dtype.kind}{a.dtype.itemsize}"
    if code not in NNKIT_CODES:
        raise TypeError(f"nnkit reads bool, int, uint and float16/32/64 arrays, not {a.dtype}")
    a = np.asarray(a, dtype=a.dtype.newbyteorder("<"), order="C")  # keeps 0-d
    fb, close = _binary(f, "ab")  # a path is appended to
    try:
        np.lib.format.write_array(_WriteOnly(fb), a, allow_pickle=False)
    finally:
        if close:
            fb.close()


def write_all(f, arrays):
    """Writes every array of arrays to f (a path is created or truncated)."""
    fb, close = _binary(f, "wb")
    try:
        for a in arrays:
            write_array(fb, a)
    finally:
        if close:
            fb.close()


def _main(argv):
    src = argv[1] if len(argv) > 1 and argv[1] != "-" else sys.stdin.buffer
    for i, a in enumerate(iter_arrays(src)):
        print(f"{i}: {a.dtype} {a.shape}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(_main(sys.argv))
    except StreamError as e:
        print(f"nnkit_stream: error: {e}", file=sys.stderr)
        sys.exit(65)
