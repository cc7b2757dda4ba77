"""Streaming reads of big COCO-style JSON files into Arrow, in bounded memory.

The iNaturalist competition files are single JSON documents (iNat2021's ``train.json`` holds
2.7 million image records, about a gigabyte). Loading one with ``json.load`` costs several times
its size in Python objects. This module never holds the whole document:

* :class:`JsonScanner` reads the document block by block (from a file, a zip member or a tar
  member) and walks it exactly: worker threads locate each block's quotes, backslash runs and
  brackets with vectorised numpy passes, and a sequential walk over the brackets outside
  strings finds the top-level arrays (``images``, ``annotations``, ...) and where each of their
  records ends. It yields :class:`Chunk` s of whole records (about ``chunk_bytes`` each) and
  validates what lies between the arrays.
* :func:`decode_records` turns a chunk into an Arrow table of the fields a :class:`RecordSpec`
  names: the separators after the record ends become newlines and Arrow's multithreaded JSON
  reader parses the result; on any error the chunk is decoded again with a typed ``msgspec``
  Struct, whose message gives the record index and the field, so every bad input ends in one
  :class:`~geoaware.errors.InputFileError` naming file, record and field.
* The fast path for the biggest array: with ``JsonScanner(skip={"images"})`` the walk does not
  go through ``images`` but guesses its end (the first ``}]`` followed by ``,`` or ``}``) and
  walks on from there; :func:`iter_span` then cuts the array's bytes at ``}, {`` and
  :func:`decode_span` accepts a piece only if Arrow reads exactly one record per cut. A cut or
  an end inside a string, or any other layout, makes the check fail (a raw line break inside a
  string, a row count that does not match, text that is not JSON), and the reader falls back:
  to :func:`scan_stretch` (the exact walk) from the last piece accepted, or, when the guessed
  end was wrong, to the exact walk of the whole file (:class:`GuessFailedError`).

Quirks handled: records split across read blocks, backslash escapes (runs of backslashes, also
across blocks), pretty-printed or compact layout, ``NaN``/``Infinity`` number tokens (read as
null), keys in any order (an array that is needed before another can be read twice: see
:meth:`Chunk.ref` and :func:`reload`), and truncated files, missing commas, trailing commas,
mismatched brackets and data after the end, each reported with the file and record.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import re
import tarfile
import zipfile
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.json as pajson

from geoaware.errors import InputFileError
from geoaware.typing import BoolArray, IntArray

__all__ = [
    "BLOCK_SIZE",
    "CHUNK_BYTES",
    "Chunk",
    "Field",
    "GuessFailedError",
    "JsonFile",
    "JsonScanner",
    "RecordSpec",
    "SpanPiece",
    "decode_records",
    "decode_span",
    "iter_span",
    "reload",
    "scan_stretch",
]

BLOCK_SIZE = 8 << 20
"""Bytes read from the stream at a time."""
CHUNK_BYTES = 24 << 20
"""Records are handed on in chunks of about this many bytes (one Arrow parse each)."""

_WS = b" \t\r\n"
_KEY_RE = re.compile(rb'"((?:[^"\\]|\\.)*)"\s*:\s*$', re.DOTALL)
_NAN_RE = re.compile(rb"([:,\[]\s*)-?(?:NaN|Infinity)(?=\s*[,}\]])")
_MSGSPEC_AT = re.compile(r"\s*-\s*at\s*`\$\[(\d+)\]((?:\.\w+|\[\d+\])*)`")
_MSGSPEC_BYTE = re.compile(r"\(byte (\d+)\)")


# --------------------------------------------------------------------------------------------
# Opening a JSON document: a plain file, or a member of a zip or tar archive


@dataclass(frozen=True)
class JsonFile:
    """A JSON document on disk: a plain file, or ``member`` inside a zip or tar archive.

    Attributes
    ----------
    path : Path
        The file or the archive.
    member : str or None
        The member's file name inside the archive (matched on the last path component, so
        ``a/b/train.json`` is found as ``train.json``; ``__MACOSX/`` entries are ignored).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.json"
    >>> _ = p.write_bytes(b'{"images": []}')
    >>> with JsonFile(p).open() as fh:
    ...     fh.read()
    b'{"images": []}'
    >>> JsonFile(pathlib.Path("a.zip"), "b.json").where
    'a.zip:b.json'
    """

    path: Path
    member: str | None = None

    @property
    def where(self) -> str:
        """How errors name the document: ``path`` or ``archive:member``."""
        return str(self.path) if self.member is None else f"{self.path}:{self.member}"

    @contextlib.contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        """Open the document for binary reading (streaming out of an archive).

        Raises
        ------
        InputFileError
            If the archive is unreadable or lacks the member.
        """
        if self.member is None:
            with open(self.path, "rb") as fh:
                yield fh
            return
        try:
            if zipfile.is_zipfile(self.path):
                with zipfile.ZipFile(self.path) as zf:
                    names = [n for n in zf.namelist() if not n.startswith("__MACOSX/")]
                    name = self._pick(names)
                    with zf.open(name) as fh:
                        yield fh
                return
            with tarfile.open(self.path, "r:*") as tf:
                seen = []
                for info in tf:
                    if info.isfile() and not info.name.startswith("__MACOSX/"):
                        seen.append(info.name)
                        if Path(info.name).name == self.member:
                            member = tf.extractfile(info)
                            if member is None:  # pragma: no cover - isfile() was checked
                                break
                            with member:
                                yield member
                            return
                self._pick(seen)  # raises: not found
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
            raise InputFileError(
                self.path, f"not a readable zip or tar archive ({exc})", field=self.member
            ) from exc

    def _pick(self, names: Sequence[str]) -> str:
        for name in names:
            if Path(name).name == self.member:
                return name
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise InputFileError(self.path, f"archive holds no {self.member} (found: {shown})")


# --------------------------------------------------------------------------------------------
# Scanning


@dataclass(frozen=True)
class Chunk:
    """Consecutive whole records of one top-level JSON array.

    Attributes
    ----------
    key : str or None
        The array's key in the top-level object, or None when the document is the array.
    first : int
        Index (0-based) of the chunk's first record in the array.
    data : bytes
        The records' text, from the first byte of the first record to the last byte of the
        last, with the separators between them (empty in a :meth:`ref`).
    ends : ndarray of int64
        Offset in ``data`` of each record's closing brace.
    offset : int
        Byte offset of ``data[0]`` in the document.
    size : int
        ``len(data)`` (kept by :meth:`ref`).
    last : bool
        Whether this is the array's last chunk (an empty array gives one empty last chunk).
    exact : bool
        False for the one chunk that spans a skipped array (see ``JsonScanner(skip=...)``):
        the bytes between its brackets, not yet known to be records.
    """

    key: str | None
    first: int
    data: bytes
    ends: IntArray
    offset: int
    size: int
    last: bool
    exact: bool = True

    def __len__(self) -> int:
        return len(self.ends)

    def ref(self) -> Chunk:
        """Return the chunk without its bytes, to be read again later with :func:`reload`."""
        return dataclasses.replace(self, data=b"")


class GuessFailedError(Exception):
    """A fast path's guess about a document's layout did not hold; read it exactly instead.

    Raised only before anything of the guessed array was handed on; never reaches users.
    """


class JsonScanner:
    """Stream a JSON document and yield the records of its top-level arrays in chunks.

    Parameters
    ----------
    stream
        A binary stream positioned at the document's start.
    where
        Names the document in errors.
    wanted
        The keys of the top-level arrays to yield (the other arrays are skipped unread); a
        document that is itself an array is yielded under the key None when None is wanted.
    block_size, chunk_bytes
        Read size, and the size of the chunks handed on.
    skip
        Keys of wanted arrays not to walk: their end is found by a byte search for the first
        ``}]`` followed by ``,`` or ``}`` and one :attr:`Chunk.exact` ``False`` chunk (no bytes,
        no record ends) spans them; see :func:`iter_span`. What follows is walked exactly; an
        error there means the guess was wrong and raises :class:`GuessFailedError`.
    root_key, index_base, offset_base
        For reading a stretch of an array as if it were a document: chunks and errors of the
        top-level array are named ``root_key``, record indices and byte offsets shifted.

    Attributes
    ----------
    arrays : dict of str or None to int
        Every top-level array seen and its number of object records (-1 if skipped).
    values : dict of str to object
        The document's other top-level values (``info``, ...), decoded.

    Raises
    ------
    InputFileError
        For a document that is not JSON, is truncated, has unbalanced or mismatched brackets,
        a missing or extra comma between records, or data after its end.

    Examples
    --------
    >>> import io
    >>> doc = b'{"info": {"year": 2017}, "images": [{"id": 1}, {"id": 2}], "n": 3}'
    >>> scanner = JsonScanner(io.BytesIO(doc), "x.json", wanted={"images"})
    >>> [(c.key, c.first, len(c), c.data) for c in scanner]
    [('images', 0, 2, b'{"id": 1}, {"id": 2}')]
    >>> scanner.arrays, scanner.values
    ({'images': 2}, {'info': {'year': 2017}, 'n': 3})
    """

    def __init__(
        self,
        stream: IO[bytes],
        where: str,
        wanted: Collection[str | None],
        *,
        block_size: int = BLOCK_SIZE,
        chunk_bytes: int = CHUNK_BYTES,
        skip: Collection[str] = (),
        root_key: str | None = None,
        index_base: int = 0,
        offset_base: int = 0,
    ) -> None:
        self.stream = stream
        self.where = where
        self.wanted = set(wanted)
        self.block_size = max(int(block_size), 1)
        self.chunk_bytes = max(int(chunk_bytes), 1)
        self.skip = set(skip)
        self.root_key = root_key
        self.index_base = index_base
        self.offset_base = offset_base
        self.arrays: dict[str | None, int] = {}
        self.values: dict[str, object] = {}
        self.materialize: Callable[[str | None], bool] = lambda key: True
        """Whether a key's chunks carry their bytes; set it to skip copying records that
        will be read again with :func:`reload` (as if :meth:`Chunk.ref` had been taken)."""
        self._guessed = False

    def _error(self, problem: str, record: object | None = None) -> InputFileError:
        return InputFileError(self.where, problem, record=record)

    def _at(self, offset: int) -> int:
        return offset + self.offset_base

    def __iter__(self) -> Iterator[Chunk]:
        # blocks are read ahead and their characters located by worker threads (numpy
        # releases the GIL); only the walk through the brackets is sequential
        with ThreadPoolExecutor(READ_AHEAD, thread_name_prefix="geoaware-json") as pool:
            blocks = _Blocks(self.stream, self.block_size, pool)
            try:
                for chunk in self._walk(blocks):
                    if chunk.key is None and (self.root_key or self.index_base):
                        chunk = dataclasses.replace(
                            chunk,
                            key=self.root_key,
                            first=chunk.first + self.index_base,
                            offset=chunk.offset + self.offset_base,
                        )
                    yield chunk
            except InputFileError as exc:
                if self._guessed:
                    raise GuessFailedError(str(exc)) from exc
                raise
            finally:
                blocks.cancel()

    def _walk(self, blocks: _Blocks) -> Iterator[Chunk]:
        in_str = False  # inside a string at the block's start
        bs_run = 0  # length of the backslash run that ended the previous block
        depth = 0
        root: int | None = None  # ord("{") or ord("[")
        done = False
        cur: _Array | None = None
        skel: list[bytes] = []  # the document outside its top-level arrays
        skel_from: int | None = None
        end = 0
        for pos, features in blocks:
            block = features.data
            n = len(block)
            end = pos + n
            if done:
                if block.strip(_WS):
                    raise self._error(
                        f"data after the end of the JSON document (byte {self._at(pos)})"
                    )
                continue
            start = 0
            if root is None:
                lead = n - len(block.lstrip(_WS))
                if lead == n:
                    continue
                root = block[lead]
                if root not in (0x7B, 0x5B):
                    raise self._error(
                        f"not a JSON object or array (starts with {block[lead : lead + 20]!r})"
                    )
                depth = 1
                start = lead + 1
                if root == 0x5B:
                    cur = self._open_array(None, pos + start)
                else:
                    skel_from = pos + lead
            arr = features.arr
            br, parity, nquotes = features.br, features.parity, features.nquotes
            # a backslash run carried over from the previous block changes whether one
            # character near the start is escaped; if it is a quote, the parity after it flips
            if bs_run % 2:
                flip = features.first_target if features.starts_with_backslash else 0
                if 0 <= flip < n and arr[flip] == 0x22:
                    # after a backslash-free start the character becomes escaped; after a run,
                    # the carried backslash flips whether the run escapes it
                    escaped = not features.starts_with_backslash or not features.first_escapes
                    nquotes += -1 if escaped else 1
                    parity = parity ^ (br > flip).astype(np.uint8)
            bs_run = features.tail_run + (bs_run if features.all_backslashes else 0)
            keep = ((parity ^ np.uint8(in_str)) == 0) & (br >= start)
            br = br[keep]
            in_str = bool((int(in_str) + nquotes) & 1)
            kinds = arr[br]
            delta = np.where(kinds & 2, 1, -1).astype(np.int64)
            objects = kinds == 0x7D
            dep = depth + np.cumsum(delta) if br.size else np.empty(0, np.int64)
            if br.size:
                depth = int(dep[-1])
            if root == 0x7B:
                major = np.flatnonzero((dep <= 1) | ((dep == 2) & (delta > 0)))
            else:
                major = np.flatnonzero(dep <= 0)
            prev = 0
            jumped = False
            for m in major.tolist():
                if cur is not None:
                    cur.add_ends(br[prev:m], dep[prev:m], delta[prev:m], objects[prev:m], pos)
                prev = m + 1
                p = int(br[m])
                d = int(dep[m])
                c = block[p]
                if d < 0:
                    raise self._error(f"unbalanced {chr(c)!r} at byte {self._at(pos + p)}")
                if d == 0:  # the document closes
                    if c != root + 2:
                        raise self._error(f"mismatched {chr(c)!r} at byte {self._at(pos + p)}")
                    if cur is not None:  # the document is an array
                        cur.append(block, pos, p)
                        yield from self._close_array(cur)
                        cur = None
                    if skel_from is not None:
                        skel.append(block[skel_from - pos : p + 1])
                        skel_from = None
                    if block[p + 1 :].strip(_WS):
                        raise self._error(
                            "data after the end of the JSON document "
                            f"(byte {self._at(pos + p + 1)})"
                        )
                    done = True
                    break
                if d == 2:  # a top-level value opens
                    if c == 0x5B:
                        assert skel_from is not None
                        skel.append(block[skel_from - pos : p])
                        key = self._key(_tail(skel, 4096), pos + p)
                        skel.append(b"0")
                        skel_from = None
                        if key in self.skip and key in self.wanted:
                            # guess where the array ends, and go on walking from there
                            close = blocks.jump_past_array(block, pos, p + 1)
                            if close is None:
                                raise GuessFailedError(f"{self.where}: no end found for {key!r}")
                            self._guessed = True
                            self.arrays[key] = -1
                            yield Chunk(
                                key, 0, b"", np.empty(0, np.int64), pos + p + 1,
                                close - (pos + p + 1), True, exact=False,
                            )  # fmt: skip
                            skel_from = close + 1
                            depth = 1
                            in_str, bs_run = False, 0
                            jumped = True
                            break
                        cur = self._open_array(key, pos + p + 1)
                    continue
                # d == 1: a top-level value closes
                if cur is not None:
                    if c != 0x5D:
                        raise self._error(
                            f"mismatched {chr(c)!r} at byte {self._at(pos + p)}",
                            self._record(cur),
                        )
                    cur.append(block, pos, p)
                    yield from self._close_array(cur)
                    cur = None
                    skel_from = pos + p + 1
                elif c != 0x7D:
                    raise self._error(f"mismatched {chr(c)!r} at byte {self._at(pos + p)}")
            if done or jumped:
                continue
            if cur is not None:
                cur.add_ends(br[prev:], dep[prev:], delta[prev:], objects[prev:], pos)
                cur.append(block, pos, n)
                if cur.wanted and cur.pending_bytes >= self.chunk_bytes:
                    yield from cur.emit(
                        final=False,
                        limit=self.chunk_bytes,
                        error=self._error,
                        materialize=self.materialize(cur.key),
                    )
            elif skel_from is not None:
                skel.append(block[skel_from - pos :])
                skel_from = pos + n
        if root is None:
            raise self._error("empty file: no JSON document")
        if not done:
            what = "inside a string" if in_str else ""
            if cur is not None:
                what += f"{' in' if what else 'inside'} the {self._name(cur.label)} array"
            elif not what:
                what = "before the document closes"
            record = self._record(cur) if cur is not None else None
            raise self._error(
                f"truncated: the file ends {what} (after {self._at(end)} bytes)", record
            )
        if root == 0x7B:
            try:
                top = msgspec.json.decode(b"".join(skel))
            except msgspec.DecodeError as exc:
                raise self._error(f"malformed JSON outside the record arrays ({exc})") from None
            self.values = {k: v for k, v in top.items() if k not in self.arrays}

    # helpers of the state machine

    def _open_array(self, key: str | None, data_from: int) -> _Array:
        self.arrays[key] = 0
        label = self.root_key if key is None else key
        base = self.index_base if key is None else 0
        return _Array(key, key in self.wanted, 1 if key is None else 2, data_from, label, base)

    def _close_array(self, cur: _Array) -> Iterator[Chunk]:
        if cur.wanted:
            yield from cur.emit(
                final=True,
                limit=self.chunk_bytes,
                error=self._error,
                materialize=self.materialize(cur.key),
            )
        self.arrays[cur.key] = cur.count + cur.pending_count

    def _key(self, text: bytes, at: int) -> str:
        found = _KEY_RE.search(text[-4096:])
        if found is None:
            raise self._error(f"malformed JSON: no key before the array at byte {self._at(at)}")
        try:
            key: str = msgspec.json.decode(b'"' + found.group(1) + b'"')
        except msgspec.DecodeError:
            raise self._error(f"malformed key before byte {self._at(at)}") from None
        return key

    @staticmethod
    def _name(key: str | None) -> str:
        return "top-level" if key is None else repr(key)

    @staticmethod
    def _record(cur: _Array) -> str:
        index = cur.base + cur.count + cur.pending_count
        return f"[{index}]" if cur.label is None else f"{cur.label}[{index}]"


class _Blocks:
    """The blocks of a stream in order, with their offsets, located ``READ_AHEAD`` ahead."""

    def __init__(self, stream: IO[bytes], size: int, pool: ThreadPoolExecutor) -> None:
        self.stream = stream
        self.size = size
        self.pool = pool
        self.ahead: deque[tuple[int, bytes, Future[_Block]]] = deque()
        self.read_to = 0  # offset of the next byte to read from the stream
        self.eof = False

    def __iter__(self) -> Iterator[tuple[int, _Block]]:
        while True:
            while not self.eof and len(self.ahead) < READ_AHEAD:
                data = self.stream.read(self.size)
                if not data:
                    self.eof = True
                    break
                self.ahead.append((self.read_to, data, self.pool.submit(_locate, data)))
                self.read_to += len(data)
            if not self.ahead:
                return
            pos, _, future = self.ahead.popleft()
            yield pos, future.result()

    def jump_past_array(self, block: bytes, pos: int, start: int) -> int | None:
        """Find the guessed end of an array whose data starts at ``block[start]``.

        The guess is the first ``]`` that follows a ``}`` and is followed by ``,`` or ``}``
        (white space allowed between). The bytes after it become the next block; those before
        it are never located. Return the offset of the ``]``, or None if the stream ends first.
        """
        queued = deque(data for _, data, _ in self.ahead)
        self.cancel()
        self.ahead.clear()

        def more() -> bytes:
            if queued:
                return queued.popleft()
            data = self.stream.read(self.size)
            self.read_to += len(data)
            self.eof = not data
            return data

        width = _CONTEXT
        prev = b""  # the last 2 * width bytes before data
        data, data_at = block[start:], pos + start
        while True:
            nxt = b""
            while len(data) < 4 * width:  # tiny blocks: gather a few
                nxt = more()
                if not nxt:
                    break
                data += nxt
                nxt = b""
            # every "]" is looked at once, with width bytes around it: those near the start
            # of data together with the end of prev, the others inside data, the last ones
            # with the next data (or at the very end)
            window = prev + data[: 2 * width]
            close = _first_close(window, max(len(prev) - width, 0), len(prev) + width, False)
            if close is not None:
                close += data_at - len(prev)
            else:
                close = _first_close(data, width, len(data) - width, False)
                if close is not None:
                    close += data_at
            if close is None:
                nxt = more()
                if not nxt:
                    last = _first_close(data[-2 * width :], width, 2 * width, True)
                    if last is None:
                        return None
                    close = data_at + len(data) - min(len(data), 2 * width) + last
            if close is not None:
                if close + 1 >= data_at:
                    rest = data[close + 1 - data_at :]
                else:
                    rest = prev[close + 1 - (data_at - len(prev)) :] + data
                offset = close + 1
                for piece in (rest, nxt, *queued):  # what was read stays, in order
                    if piece:
                        self.ahead.append((offset, piece, self.pool.submit(_locate, piece)))
                        offset += len(piece)
                return close
            prev = data[-2 * width :]
            data, data_at = nxt, data_at + len(data)

    def cancel(self) -> None:
        for _, _, future in self.ahead:
            future.cancel()


class _Array:
    """The top-level array being scanned: its pending bytes and where its records end.

    The pending bytes are views of the blocks read, not copies; a chunk's bytes are copied
    out once, and only when they are wanted now.
    """

    def __init__(
        self,
        key: str | None,
        wanted: bool,
        depth: int,
        data_from: int,
        label: str | None = None,
        base: int = 0,
    ) -> None:
        self.key = key
        self.label = label  # how errors name the array (the key, unless rebased)
        self.base = base  # added to record indices in errors
        self.wanted = wanted
        self.depth = depth  # depth inside the array; a record closes back to it
        self.data_from = data_from  # document offset where the pending bytes start
        self.pieces: list[memoryview] = []
        self.starts: list[int] = []  # document offset of each piece
        self.pending_bytes = 0
        self.ends: list[IntArray] = []
        self.pending_count = 0
        self.count = 0  # records already emitted
        self.appended_to = data_from  # document offset up to which pieces hold the bytes

    def add_ends(
        self, br: IntArray, dep: IntArray, delta: IntArray, objects: BoolArray, pos: int
    ) -> None:
        """Note the records (objects) that close in this stretch of bracket events."""
        if not br.size:
            return
        closes = br[(delta < 0) & (dep == self.depth) & objects]
        if closes.size:
            self.pending_count += int(closes.size)
            if self.wanted:
                self.ends.append(closes + pos)

    def append(self, block: bytes, pos: int, stop: int) -> None:
        """Keep the block's bytes from where the array's data starts up to ``stop``."""
        begin = max(self.appended_to - pos, 0)
        if self.wanted and stop > begin:
            self.pieces.append(memoryview(block)[begin:stop])
            self.starts.append(pos + begin)
            self.pending_bytes += stop - begin
        self.appended_to = pos + stop

    def _byte(self, at: int) -> int:
        i = bisect.bisect_right(self.starts, at) - 1
        return int(self.pieces[i][at - self.starts[i]])

    def _gather(self, begin: int, end: int) -> bytes:
        i = max(bisect.bisect_right(self.starts, begin) - 1, 0)
        parts = []
        while i < len(self.pieces) and self.starts[i] < end:
            lo = max(begin - self.starts[i], 0)
            hi = min(end - self.starts[i], len(self.pieces[i]))
            parts.append(self.pieces[i][lo:hi])
            i += 1
        return b"".join(parts)

    def _drop_before(self, at: int) -> None:
        keep = 0
        while keep < len(self.pieces) and self.starts[keep] + len(self.pieces[keep]) <= at:
            keep += 1
        del self.pieces[:keep], self.starts[:keep]

    def emit(
        self,
        *,
        final: bool,
        limit: int,
        error: Callable[..., InputFileError],
        materialize: bool = True,
    ) -> Iterator[Chunk]:
        """Hand on the pending whole records in chunks of about ``limit`` bytes.

        Without ``final`` the bytes after the last whole record stay pending; with it,
        everything left goes out, the last chunk marked ``last``. Without ``materialize`` the
        chunks carry no bytes (as :meth:`Chunk.ref` would give).
        """
        ends = np.concatenate(self.ends) if self.ends else np.empty(0, np.int64)
        if not final and not ends.size:
            return
        start = self.data_from
        stop = self.appended_to
        k = 0
        while True:
            left = ends.size - k
            if left:
                j = int(np.searchsorted(ends[k:], start + limit)) - 1
                j = min(max(j, 0), left - 1)
                take = j + 1
                cut = int(ends[k + j]) + 1
            else:
                take, cut = 0, stop
            last = final and k + take == ends.size
            if last:
                cut = stop
            chunk = self._chunk(start, cut, ends[k : k + take], last, error, materialize)
            k += take
            start = cut
            if chunk.size or last:
                yield chunk
            if last or k == ends.size:
                break
        self._drop_before(start)
        self.data_from = start
        self.pending_bytes = stop - start
        self.ends = []

    def _chunk(
        self,
        start: int,
        cut: int,
        ends: IntArray,
        last: bool,
        error: Callable[..., InputFileError],
        materialize: bool,
    ) -> Chunk:
        """Cut one chunk out of the pending bytes, checking the separator before it."""
        name = "[" if self.label is None else f"{self.label}["
        index = self.base + self.count
        lead = start
        while lead < cut and self._byte(lead) in _WS:
            lead += 1
        if lead < cut and self._byte(lead) == 0x2C:  # ','
            if not self.count:
                raise error("unexpected ',' before the first record", f"{name}{index}]")
            lead += 1
            while lead < cut and self._byte(lead) in _WS:
                lead += 1
            if lead == cut and last:
                raise error("trailing comma at the end of the array", f"{name}{index}]")
        elif self.count and lead < cut:
            raise error(f"missing ',' before record {index}", f"{name}{index}]")
        chunk = Chunk(
            key=self.key,
            first=self.count,
            data=self._gather(lead, cut) if materialize else b"",
            ends=ends - lead,
            offset=lead,
            size=cut - lead,
            last=last,
        )
        self.count += int(ends.size)
        self.pending_count -= int(ends.size)
        return chunk


_CONTEXT = 64
"""Bytes looked at around a guessed array end."""


def _first_close(buf: bytes, lo: int, hi: int, at_end: bool) -> int | None:
    """Return the first ``]`` in ``buf[lo:hi]`` after ``}`` and before ``,`` or ``}``.

    White space may come between; the context is taken from ``buf`` itself (``at_end``:
    nothing follows ``buf``). None also when one cannot be decided without more bytes.
    """
    i = buf.find(b"]", lo, max(hi, lo))
    while i >= 0:
        before = buf[max(i - _CONTEXT, 0) : i].rstrip(_WS)
        after = buf[i + 1 : i + 1 + _CONTEXT].lstrip(_WS)
        if before.endswith(b"}") and after[:1] in (b",", b"}"):
            return i
        if not after and not at_end and i + 1 + _CONTEXT > len(buf):
            return None  # undecided: the caller looks again with more bytes
        i = buf.find(b"]", i + 1, max(hi, lo))
    return None


def _tail(pieces: list[bytes], size: int) -> bytes:
    """Return the last ``size`` bytes (at least) of the concatenated pieces."""
    out: list[bytes] = []
    have = 0
    for piece in reversed(pieces):
        out.append(piece)
        have += len(piece)
        if have >= size:
            break
    return b"".join(reversed(out))


READ_AHEAD = 2
"""Blocks located ahead of the walk, by as many worker threads."""


class _Block(NamedTuple):
    """A block read, with its brackets and whether each is inside a string.

    Worked out as if the block started outside a string with no backslash before it; the
    walk corrects for the state the previous block left.
    """

    data: bytes
    arr: npt.NDArray[np.uint8]
    br: IntArray  # positions of brackets
    parity: npt.NDArray[np.uint8]  # 1 where an odd number of quotes precede the bracket
    nquotes: int  # unescaped quotes in the block
    starts_with_backslash: bool
    first_target: int  # the character after the block's first backslash run
    first_escapes: bool  # whether that run escapes it (run length odd), with no carry
    tail_run: int  # length of the backslash run that ends the block (0 if none)
    all_backslashes: bool


def _locate(data: bytes) -> _Block:
    """Locate a block's quotes, backslash runs and brackets (run in a worker thread)."""
    arr = np.frombuffer(data, np.uint8)
    n = arr.size
    quotes = np.flatnonzero(arr == 0x22)
    bs = np.flatnonzero(arr == 0x5C)
    starts_with = bool(n and arr[0] == 0x5C)
    first_target, first_escapes, tail, whole = -1, False, 0, False
    if bs.size:
        breaks = np.flatnonzero(np.diff(bs) != 1)
        starts = np.concatenate(([bs[0]], bs[breaks + 1]))
        stops = np.concatenate((bs[breaks], [bs[-1]]))
        lengths = stops - starts + 1
        first_target = int(stops[0]) + 1
        first_escapes = bool(lengths[0] % 2)
        tail = int(lengths[-1]) if stops[-1] == n - 1 else 0
        whole = bool(starts_with and stops[0] == n - 1)
        targets = stops[lengths % 2 == 1] + 1
        targets = targets[targets < n]
        escaped = targets[arr[targets] == 0x22]
        if escaped.size:  # drop the escaped quotes (both arrays are sorted)
            quotes = np.delete(quotes, np.searchsorted(quotes, escaped))
    folded = arr | 0x20  # '[' -> '{', ']' -> '}'
    br = np.flatnonzero((folded == 0x7B) | (folded == 0x7D))
    parity = (np.searchsorted(quotes, br) & 1).astype(np.uint8)
    return _Block(
        data, arr, br, parity, int(quotes.size), starts_with, first_target, first_escapes,
        tail, whole,
    )  # fmt: skip


def reload(stream: IO[bytes], refs: Sequence[Chunk]) -> Iterator[Chunk]:
    """Read again, in document order, the bytes of chunks kept with :meth:`Chunk.ref`.

    Examples
    --------
    >>> import io
    >>> doc = b'{"images": [{"id": 1}], "annotations": []}'
    >>> refs = [c.ref() for c in JsonScanner(io.BytesIO(doc), "x", {"images"})]
    >>> [c.data for c in reload(io.BytesIO(doc), refs)]
    [b'{"id": 1}']
    """
    at = 0
    for ref in sorted(refs, key=lambda r: r.offset):
        skip = ref.offset - at
        if skip and stream.seekable():
            stream.seek(ref.offset)
        else:
            while skip > 0:
                got = len(stream.read(min(skip, BLOCK_SIZE)))
                if not got:
                    break
                skip -= got
        data = stream.read(ref.size)
        at = ref.offset + len(data)
        yield dataclasses.replace(ref, data=data)


# --------------------------------------------------------------------------------------------
# A skipped array, read fast: cut at "}, {", checked by Arrow


@dataclass(frozen=True)
class SpanPiece:
    """Bytes of a skipped array cut at ``}, {`` separators: records, if the guess holds.

    Attributes
    ----------
    key : str
        The array's key.
    first : int
        Index of the piece's first record, or -1 when not counted (the reader of the pieces
        knows it from the rows decoded so far).
    offset : int
        Document offset of ``data[0]``.
    data : bytes
        From a ``{`` to a ``}``, with no surrounding white space.
    seps : int or None
        How many ``}, {`` it holds (it is ``seps + 1`` records if the guess holds); None if
        not counted yet (:func:`decode_span` counts them as it replaces them).
    """

    key: str
    first: int
    offset: int
    data: bytes
    seps: int | None = None


def iter_span(
    stream: IO[bytes], span: Chunk, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[SpanPiece]:
    """Cut the bytes of a skipped array (a :attr:`Chunk.exact` False chunk) into pieces.

    ``stream`` is the document, opened afresh. Pieces end at the last ``}, {`` before about
    ``chunk_bytes``; nothing is checked here (see :func:`decode_span`).
    """
    key = str(span.key)
    if stream.seekable():
        stream.seek(span.offset)
    else:
        skip = span.offset
        while skip > 0:
            got = len(stream.read(min(skip, BLOCK_SIZE)))
            if not got:
                break
            skip -= got
    left = span.size
    buf = bytearray()
    at = span.offset  # document offset of buf[0]
    first = -1

    def piece(end: int, seps: int | None = None) -> SpanPiece:
        view = memoryview(buf)[:end]
        lead = 0
        while lead < end and view[lead] in _WS:
            lead += 1
        stop = end
        while stop > lead and view[stop - 1] in _WS:
            stop -= 1
        data = bytes(view[lead:stop])
        view.release()
        return SpanPiece(key, first, at + lead, data, seps)

    while True:
        while left > 0 and len(buf) < chunk_bytes:
            data = stream.read(min(BLOCK_SIZE, left))
            if not data:
                left = 0
                break
            left -= len(data)
            buf += data
        if left <= 0 and len(buf) <= chunk_bytes:
            if bytes(buf).strip(_WS):
                yield piece(len(buf))
            return
        cut = buf.rfind(b"}, {", 0, chunk_bytes)
        if cut < 0:
            cut = buf.find(b"}, {", chunk_bytes)
        if cut < 0:
            if left > 0 and len(buf) < 4 * chunk_bytes:  # a record longer than that
                data = stream.read(min(BLOCK_SIZE, left))
                left = left - len(data) if data else 0
                buf += data
                continue
            # no separator: hand it all on (decode_span refuses what is not records)
            yield piece(len(buf), 0 if left > 0 else None)
            return
        yield piece(cut + 1)
        del buf[: cut + 3]
        at += cut + 3


def decode_span(piece: SpanPiece, spec: RecordSpec) -> pa.Table | None:
    r"""Decode a piece of a skipped array, or return None if it is not exactly records.

    The piece is accepted only if, with each ``}, {`` turned into ``}\n{``, Arrow reads it as
    newline-delimited JSON into exactly ``seps + 1`` rows with every required key: a ``}, {``
    inside a string would leave a raw line break in it (invalid JSON), one missed would
    leave two records on a line (a row more, or an error).
    """
    data = piece.data
    if not (data.startswith(b"{") and data.endswith(b"}")) or b"\n" in data:
        return None
    lines = data.replace(b"}, {", b"}\n{")
    seps = len(data) - len(lines)  # each replacement is a byte shorter
    if piece.seps is not None and piece.seps != seps:
        return None
    table = _read_lines(pa.py_buffer(lines), spec, multiline=False)
    if table is None or table.num_rows != seps + 1 or not _has_required(table, data, spec):
        return None
    return table


class _Window:
    """``[`` + the document's bytes from ``start`` to ``end`` + ``]``, as a stream."""

    def __init__(self, stream: IO[bytes], start: int, end: int) -> None:
        if stream.seekable():
            stream.seek(start)
        else:
            skip = start
            while skip > 0:
                got = len(stream.read(min(skip, BLOCK_SIZE)))
                if not got:
                    break
                skip -= got
        self.stream = stream
        self.left = end - start
        self.head = b"["
        self.tail = b"]"

    def read(self, size: int = -1) -> bytes:
        parts = [self.head]
        self.head = b""
        have = len(parts[0])
        want = self.left if size < 0 else size - have
        if self.left > 0 and want > 0:
            data = self.stream.read(min(want, self.left))
            self.left = self.left - len(data) if data else 0
            parts.append(data)
            have += len(data)
        if self.left <= 0 and (size < 0 or have < size):
            parts.append(self.tail)
            self.tail = b""
        return b"".join(parts)


def scan_stretch(
    stream: IO[bytes],
    where: str,
    key: str,
    start: int,
    end: int,
    first: int,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[Chunk]:
    """Walk exactly the records of an array from offset ``start`` to its bracket at ``end``.

    ``start`` is a record's first byte; records are numbered from ``first``. This is the
    fall-back when a piece of a skipped array is not what :func:`decode_span` accepts; its
    errors name the array, the record and the byte as a full walk would.
    """
    window = _Window(stream, start, end)
    yield from JsonScanner(
        window,  # type: ignore[arg-type]
        where,
        {None},
        chunk_bytes=chunk_bytes,
        root_key=key,
        index_base=first,
        offset_base=start - 1,
    )


# --------------------------------------------------------------------------------------------
# Decoding records


@dataclass(frozen=True)
class Field:
    """A field of a record type.

    Attributes
    ----------
    name : str
        The JSON key.
    type : pyarrow.DataType
        int64, int32, float64, string or list of float64.
    required : bool
        The key must be present in every record.
    nullable : bool
        The value may be ``null`` (a missing optional key reads as null too).
    loose : bool
        For a string field: numbers are accepted too and read as their text (user ids).
    """

    name: str
    type: pa.DataType
    required: bool = False
    nullable: bool = True
    loose: bool = False


class RecordSpec:
    """The fields read from the objects of one array, for Arrow and for ``msgspec``.

    Examples
    --------
    >>> spec = RecordSpec("ann", [Field("id", pa.int64(), required=True, nullable=False)])
    >>> spec.schema
    id: int64
    """

    def __init__(self, name: str, fields: Sequence[Field]) -> None:
        self.name = name
        self.fields = list(fields)
        self.schema = pa.schema([(f.name, f.type) for f in self.fields])
        # Arrow reads numbers into a string column only as an error: a loose field is tried
        # as text, then as int64 (cast to text after).
        self.arrow_schemas = [self.schema]
        if any(f.loose for f in self.fields):
            self.arrow_schemas.append(
                pa.schema([(f.name, pa.int64() if f.loose else f.type) for f in self.fields])
            )
        members: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        for f in self.fields:
            py = _python_type(f)
            if f.required:
                members.append((f.name, py))
            else:
                members.append((f.name, py | None, None))
        self.struct = msgspec.defstruct(
            f"{name.title().replace('_', '')}Record", members, gc=False, forbid_unknown_fields=False
        )
        self.decoder: msgspec.json.Decoder[list[Any]] = msgspec.json.Decoder(
            list[self.struct]  # type: ignore[name-defined]
        )
        self.not_null = [f.name for f in self.fields if not f.nullable]


def _python_type(f: Field) -> Any:
    if pa.types.is_integer(f.type):
        base: Any = int
    elif pa.types.is_floating(f.type):
        base = float
    elif pa.types.is_list(f.type):
        base = list[float]
    elif f.loose:
        base = str | int | float
    else:
        base = str
    return base | None if f.nullable else base


def decode_records(chunk: Chunk, spec: RecordSpec, where: str) -> pa.Table:
    """Decode a chunk's records into an Arrow table with the spec's fields, in order.

    Numbers written ``NaN`` or ``Infinity`` are read as null.

    Raises
    ------
    InputFileError
        Naming the file, the record (``images[12]``) and the field, for malformed JSON, a
        record that is not an object, a missing required key, a null where none is allowed or
        a value of the wrong type.

    Examples
    --------
    >>> import io
    >>> doc = b'{"images": [{"id": 1, "w": 5}, {"id": 2, "w": null}]}'
    >>> chunk = next(iter(JsonScanner(io.BytesIO(doc), "x.json", {"images"})))
    >>> spec = RecordSpec("img", [Field("id", pa.int64(), True, False), Field("w", pa.int32())])
    >>> decode_records(chunk, spec, "x.json").to_pylist()
    [{'id': 1, 'w': 5}, {'id': 2, 'w': None}]
    >>> bad = next(iter(JsonScanner(io.BytesIO(b'[{"w": 1}]'), "y.json", {None})))
    >>> decode_records(bad, spec, "y.json")
    Traceback (most recent call last):
    ...
    geoaware.errors.InputFileError: y.json, record [0], field 'id': missing required key
    """
    if not len(chunk) and not chunk.data.strip(_WS):
        return spec.schema.empty_table()
    table = _decode_arrow(chunk, spec)
    if table is not None and table.num_rows == len(chunk) and _complete(table, chunk, spec):
        return table
    return _decode_msgspec(chunk, spec, where)


def _decode_arrow(chunk: Chunk, spec: RecordSpec) -> pa.Table | None:
    """Decode fast: the records as newline-delimited JSON through Arrow's reader."""
    if not len(chunk):
        return None
    buf = np.frombuffer(chunk.data, np.uint8).copy()
    multiline = bool(np.count_nonzero(buf == 0x0A))
    seps = chunk.ends[:-1] + 1
    if seps.size:
        if seps[-1] >= buf.size:
            return None
        commas = buf[seps] == 0x2C
        if not commas.all():
            return None  # whitespace before a comma, or none: the slow path says which
        buf[seps] = 0x0A
    if buf[0] != 0x7B or chunk.data[int(chunk.ends[-1]) + 1 :].strip(_WS):
        return None  # something other than objects at either end: the slow path says what
    return _read_lines(pa.py_buffer(buf), spec, multiline=multiline)


def _read_lines(source: pa.Buffer, spec: RecordSpec, *, multiline: bool) -> pa.Table | None:
    """Decode newline-delimited records with Arrow's JSON reader: the one decode loop.

    Each of the spec's Arrow schemas is tried in turn (a loose field is tried as text, then as
    a number); None when none reads, and the caller's slow path says why.
    """
    for schema in spec.arrow_schemas:
        try:
            table = pajson.read_json(
                pa.BufferReader(source),
                read_options=pajson.ReadOptions(block_size=1 << 22),
                parse_options=pajson.ParseOptions(
                    explicit_schema=schema,
                    unexpected_field_behavior="ignore",
                    newlines_in_values=multiline,
                ),
            ).select(spec.schema.names)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return table if schema is spec.schema else table.cast(spec.schema)
    return None


def _complete(table: pa.Table, chunk: Chunk, spec: RecordSpec) -> bool:
    """Whether the fast path's result is trustworthy (else the slow path explains)."""
    return _has_required(table, chunk.data, spec)


def _has_required(table: pa.Table, data: bytes, spec: RecordSpec) -> bool:
    for name in spec.not_null:
        if table.column(name).null_count:
            return False
    for f in spec.fields:
        # a missing key and a null look alike in Arrow: count the key's occurrences
        key = b'"' + f.name.encode() + b'"'
        if f.required and f.nullable and data.count(key) < table.num_rows:
            return False
    return True


def _decode_msgspec(chunk: Chunk, spec: RecordSpec, where: str) -> pa.Table:
    """Decode slowly and exactly with msgspec; errors name the record and the field."""
    text = b"[" + chunk.data + b"]"
    if b"NaN" in text or b"Infinity" in text:
        text = _NAN_RE.sub(rb"\1null", text)
    name = "" if chunk.key is None else chunk.key
    try:
        records = spec.decoder.decode(text)
    except msgspec.ValidationError as exc:
        raise _validation_error(str(exc), chunk, name, where) from None
    except msgspec.DecodeError as exc:
        message = str(exc)
        found = _MSGSPEC_BYTE.search(message)
        record = None
        if found:
            at = int(found.group(1)) - 1
            index = chunk.first + int(np.searchsorted(chunk.ends, at))
            record = f"{name}[{index}]"
            message = _MSGSPEC_BYTE.sub(f"(byte {chunk.offset + max(at, 0)})", message)
        raise InputFileError(where, f"malformed JSON: {message}", record=record) from None
    columns: dict[str, pa.Array] = {}
    for f in spec.fields:
        values = [getattr(r, f.name) for r in records]
        if f.loose:
            values = [v if v is None or isinstance(v, str) else _text(v) for v in values]
        try:
            columns[f.name] = pa.array(values, f.type)
        except (pa.ArrowInvalid, OverflowError, TypeError) as exc:
            bad = _first_bad(values, f.type)
            record = f"{name}[{chunk.first + bad}]" if bad is not None else None
            raise InputFileError(
                where, f"value does not fit {f.type} ({exc})", record=record, field=f.name
            ) from None
    return pa.table(columns, schema=spec.schema)


def _text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _first_bad(values: list[Any], type_: pa.DataType) -> int | None:
    for i, v in enumerate(values):
        try:
            pa.array([v], type_)
        except (pa.ArrowInvalid, OverflowError, TypeError):
            return i
    return None


def _validation_error(message: str, chunk: Chunk, name: str, where: str) -> InputFileError:
    found = _MSGSPEC_AT.search(message)
    record = field = None
    if found:
        record = f"{name}[{chunk.first + int(found.group(1))}]"
        path = found.group(2)
        field = path.lstrip(".").split(".")[0].split("[")[0] if path else None
    text = _MSGSPEC_AT.sub("", message)
    missing = re.match(r"Object missing required field `(\w+)`", text)
    if missing:
        field, text = missing.group(1), "missing required key"
    elif text.startswith("Expected `object`"):
        text = "record is not a JSON object"
    else:
        text = text.replace("`", "")
    return InputFileError(where, text, record=record, field=field)
