"""heapsnap: a drop-in replacement for tracemalloc, on heapsnap's C engine.

    import heapsnap as tracemalloc

Tracing, grouping (statistics), comparing (compare_to) and filtering (filter_traces) run in C
(heapsnap._heapsnap and heapsnap's analysis engine).  This module only gives the results
tracemalloc's classes: Snapshot, Statistic, StatisticDiff, Traceback, Frame, Trace, Filter and
DomainFilter behave as tracemalloc's do (constructors, attributes, str, repr, equality, hashing
and ordering).  Snapshot.dump() writes a heapsnap snapshot file, which the `heapsnap` command
reads (`heapsnap top FILE`); Snapshot.load() reads any heapsnap snapshot file, native ones too.
"""
import fnmatch
import linecache
import os.path
from collections.abc import Iterable, Sequence

from . import _heapsnap
from ._heapsnap import (
    clear_traces,
    get_traceback_limit,
    get_traced_memory,
    get_tracemalloc_memory,
    is_tracing,
    reset_peak,
    start,
    stop,
)

__version__ = _heapsnap.VERSION

__all__ = [
    "start", "stop", "is_tracing", "get_traceback_limit", "clear_traces", "get_traced_memory",
    "reset_peak", "get_tracemalloc_memory", "get_object_traceback", "take_snapshot",
    "Snapshot", "Statistic", "StatisticDiff", "Traceback", "Frame", "Trace",
    "BaseFilter", "Filter", "DomainFilter", "leaks", "LeakSuspect",
]

_KEYS = {
    "filename": _heapsnap.KEY_FILENAME,
    "lineno": _heapsnap.KEY_LINENO,
    "traceback": _heapsnap.KEY_TRACEBACK,
}


def _format_size(size, sign):
    """tracemalloc's size text ("10.0 KiB", "+0 B"), from the engine."""
    return _heapsnap.format_size(size, sign)


def _average(size, count):
    return ", average=" + _format_size(size / count, False) if count else ""


class Statistic:
    """Memory allocated at one key (a Traceback): total size and number of blocks."""

    __slots__ = ("traceback", "size", "count")

    def __init__(self, traceback, size, count):
        self.traceback = traceback
        self.size = size
        self.count = count

    def _sort_key(self):
        return (self.size, self.count, self.traceback)

    def __eq__(self, other):
        if not isinstance(other, Statistic):
            return NotImplemented
        return (self.traceback, self.size, self.count) == (
            other.traceback, other.size, other.count)

    def __hash__(self):
        return hash((self.traceback, self.size, self.count))

    def __str__(self):
        return "%s: size=%s, count=%i%s" % (
            self.traceback, _format_size(self.size, False), self.count,
            _average(self.size, self.count))

    def __repr__(self):
        return "<Statistic traceback=%r size=%i count=%i>" % (
            self.traceback, self.size, self.count)


class StatisticDiff:
    """The difference at one key between an old and a new snapshot."""

    __slots__ = ("traceback", "size", "size_diff", "count", "count_diff")

    def __init__(self, traceback, size, size_diff, count, count_diff):
        self.traceback = traceback
        self.size = size
        self.size_diff = size_diff
        self.count = count
        self.count_diff = count_diff

    def _fields(self):
        return (self.traceback, self.size, self.size_diff, self.count, self.count_diff)

    def _sort_key(self):
        return (abs(self.size_diff), self.size, abs(self.count_diff), self.count,
                self.traceback)

    def __eq__(self, other):
        if not isinstance(other, StatisticDiff):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self):
        return hash(self._fields())

    def __str__(self):
        return "%s: size=%s (%s), count=%i (%+i)%s" % (
            self.traceback, _format_size(self.size, False), _format_size(self.size_diff, True),
            self.count, self.count_diff, _average(self.size, self.count))

    def __repr__(self):
        return "<StatisticDiff traceback=%r size=%i (%+i) count=%i (%+i)>" % (
            self.traceback, self.size, self.size_diff, self.count, self.count_diff)


def _ordered(cls):
    """The other comparisons from __eq__ and __lt__ (functools.total_ordering's job)."""
    def le(a, b):
        r = a.__lt__(b)
        return r if r is NotImplemented else (r or a == b)

    def gt(a, b):
        r = a.__lt__(b)
        return r if r is NotImplemented else not (r or a == b)

    def ge(a, b):
        r = a.__lt__(b)
        return r if r is NotImplemented else not r

    cls.__le__, cls.__gt__, cls.__ge__ = le, gt, ge
    return cls


@_ordered
class Frame:
    """One frame: filename and lineno.  Built from a (filename, lineno) tuple."""

    __slots__ = ("_frame",)

    def __init__(self, frame):
        self._frame = frame

    @property
    def filename(self):
        return self._frame[0]

    @property
    def lineno(self):
        return self._frame[1]

    def __eq__(self, other):
        if not isinstance(other, Frame):
            return NotImplemented
        return self._frame == other._frame

    def __lt__(self, other):
        if not isinstance(other, Frame):
            return NotImplemented
        return self._frame < other._frame

    def __hash__(self):
        return hash(self._frame)

    def __str__(self):
        return "%s:%s" % (self.filename, self.lineno)

    def __repr__(self):
        return "<Frame filename=%r lineno=%r>" % (self.filename, self.lineno)


@_ordered
class Traceback(Sequence):
    """Frames from the oldest to the most recent.

    Built from raw frames ((filename, lineno), ...) given most recent first, as traces hold them.
    """

    __slots__ = ("_frames", "_total_nframe")

    def __init__(self, frames, total_nframe=None):
        Sequence.__init__(self)
        self._frames = tuple(frames)[::-1]
        self._total_nframe = total_nframe

    @property
    def total_nframe(self):
        return self._total_nframe

    def __len__(self):
        return len(self._frames)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(Frame(f) for f in self._frames[index])
        return Frame(self._frames[index])

    def __contains__(self, frame):
        return frame._frame in self._frames

    def __eq__(self, other):
        if not isinstance(other, Traceback):
            return NotImplemented
        return self._frames == other._frames

    def __lt__(self, other):
        if not isinstance(other, Traceback):
            return NotImplemented
        return self._frames < other._frames

    def __hash__(self):
        return hash(self._frames)

    def __str__(self):
        # tracemalloc prints the oldest frame here (heapsnap's CLI prints the allocation site).
        return str(self[0])

    def __repr__(self):
        total = "" if self._total_nframe is None else " total_nframe=%s" % self._total_nframe
        return "<Traceback %s%s>" % (tuple(self), total)

    def format(self, limit=None, most_recent_first=False):
        """Lines '  File "f", line n' plus the stripped source line, oldest first.

        limit > 0 keeps the most recent frames, limit <= 0 drops -limit of them.
        """
        frames = self._frames
        if limit is not None:
            frames = frames[-limit:] if limit > 0 else frames[:limit]
        if most_recent_first:
            frames = frames[::-1]
        lines = []
        for filename, lineno in frames:
            lines.append('  File "%s", line %s' % (filename, lineno))
            source = linecache.getline(filename, lineno).strip()
            if source:
                lines.append("    " + source)
        return lines


class Trace:
    """One traced memory block: domain, size and traceback."""

    __slots__ = ("_trace",)

    def __init__(self, trace):
        self._trace = trace

    @property
    def domain(self):
        return self._trace[0]

    @property
    def size(self):
        return self._trace[1]

    @property
    def traceback(self):
        return Traceback(*self._trace[2:])

    def __eq__(self, other):
        if not isinstance(other, Trace):
            return NotImplemented
        return self._trace == other._trace

    def __hash__(self):
        return hash(self._trace)

    def __str__(self):
        return "%s: %s" % (self.traceback, _format_size(self.size, False))

    def __repr__(self):
        return "<Trace domain=%s size=%s, traceback=%r>" % (
            self.domain, _format_size(self.size, False), self.traceback)


class _Traces(Sequence):
    """The traces of a snapshot, as Trace objects made on access."""

    def __init__(self, traces):
        Sequence.__init__(self)
        self._data = traces       # a SnapshotData: a sequence of raw trace tuples

    @property
    def _traces(self):
        # tracemalloc keeps the raw (domain, size, frames, total_nframe) tuples in a list here,
        # and code written for it (CPython's own tests among it) reads that list
        return list(self._data)

    def __len__(self):
        return len(self._data)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(Trace(self._data[i]) for i in range(*index.indices(len(self))))
        return Trace(self._data[index])

    def __contains__(self, trace):
        raw = trace._trace
        return any(t == raw for t in self._data)

    def __eq__(self, other):
        if not isinstance(other, _Traces):
            return NotImplemented
        return len(self) == len(other) and all(
            a == b for a, b in zip(self._data, other._data))

    def __repr__(self):
        return "<Traces len=%s>" % len(self)


def _normalize_filename(filename):
    filename = os.path.normcase(filename)
    if filename.endswith(".pyc"):
        filename = filename[:-1]
    return filename


class BaseFilter:
    def __init__(self, inclusive):
        self.inclusive = inclusive

    def _match(self, trace):
        raise NotImplementedError


class Filter(BaseFilter):
    """Keep (inclusive) or drop the traces whose frames match filename_pattern (fnmatch)."""

    def __init__(self, inclusive, filename_pattern, lineno=None, all_frames=False, domain=None):
        super().__init__(inclusive)
        self._filename_pattern = _normalize_filename(filename_pattern)
        self.lineno = lineno
        self.all_frames = all_frames
        self.domain = domain

    @property
    def filename_pattern(self):
        return self._filename_pattern

    # The matching of one raw trace in Python, as tracemalloc's filters do it: filter_traces()
    # uses it only for filters it cannot hand to the engine (BaseFilter subclasses); code that
    # calls these private methods itself gets tracemalloc's answers.
    def _match_frame_impl(self, filename, lineno):
        if not fnmatch.fnmatch(_normalize_filename(filename), self._filename_pattern):
            return False
        return self.lineno is None or lineno == self.lineno

    def _match_frame(self, filename, lineno):
        return self._match_frame_impl(filename, lineno) ^ (not self.inclusive)

    def _match_traceback(self, traceback):
        if self.all_frames:
            if any(self._match_frame_impl(filename, lineno) for filename, lineno in traceback):
                return self.inclusive
            return not self.inclusive
        filename, lineno = traceback[0]
        return self._match_frame(filename, lineno)

    def _match(self, trace):
        domain, size, traceback, total_nframe = trace
        res = self._match_traceback(traceback)
        if self.domain is not None:
            if self.inclusive:
                return res and domain == self.domain
            return res or domain != self.domain
        return res

    def _spec(self):
        pattern, lineno = self._filename_pattern, self.lineno
        if lineno is None:
            lineno = -1
        elif not 0 <= lineno <= 0xFFFFFFFF:
            pattern, lineno = "[b-a]", -1     # a line no frame has: the pattern matches nothing
        return (bool(self.inclusive), pattern, lineno, bool(self.all_frames), self.domain)


class DomainFilter(BaseFilter):
    """Keep (inclusive) or drop the traces of one domain."""

    def __init__(self, inclusive, domain):
        super().__init__(inclusive)
        self._domain = domain

    @property
    def domain(self):
        return self._domain

    def _match(self, trace):
        domain, size, traceback, total_nframe = trace
        return (domain == self.domain) ^ (not self.inclusive)

    def _spec(self):
        return (bool(self.inclusive), None, -1, False, self._domain)


class Snapshot:
    """The traces of the memory blocks allocated at one moment, and the analysis of them."""

    def __init__(self, traces, traceback_limit):
        if not isinstance(traces, _heapsnap.SnapshotData):
            traces = _heapsnap.SnapshotData(traces, traceback_limit)
        self._data = traces
        self.traces = _Traces(traces)
        self.traceback_limit = traceback_limit

    @classmethod
    def _wrap(cls, data):
        return cls(data, data.traceback_limit)

    def __reduce__(self):
        # Pickling (tracemalloc's own dump format) keeps the raw traces and the limit, as
        # tracemalloc's snapshots do; heapsnap's metadata is not kept.
        # Attributes the program set on it travel too, as with tracemalloc's.
        extra = {k: v for k, v in self.__dict__.items()
                 if k not in ("_data", "traces", "traceback_limit")}
        return (Snapshot, (list(self._data), self.traceback_limit), extra or None)

    @property
    def meta(self):
        """heapsnap's metadata: time, pid, program, argv, kind, totals (not in tracemalloc)."""
        return self._data.meta()

    def dump(self, filename):
        """Write the snapshot into a heapsnap snapshot file (`heapsnap top FILE` reads it)."""
        self._data.traceback_limit = self.traceback_limit
        self._data.dump(filename)

    @staticmethod
    def load(filename):
        """Read a heapsnap snapshot file (written by dump(), or by the native tracer)."""
        return Snapshot._wrap(_heapsnap.SnapshotData.load(filename))

    def filter_traces(self, filters):
        """A new Snapshot with the traces that the Filter / DomainFilter list keeps."""
        if not isinstance(filters, Iterable):
            raise TypeError("filters must be a list of filters, not %s"
                            % type(filters).__name__)
        filters = list(filters)
        if all(type(f) in (Filter, DomainFilter) for f in filters):
            try:
                specs = [f._spec() for f in filters]
                return Snapshot(self._data.filter(specs), self.traceback_limit)
            except (TypeError, ValueError, OverflowError):
                pass          # what the engine does not take (a domain beyond 32 bits, ...)
        # Other filters (BaseFilter subclasses, or values the engine refuses): tracemalloc's
        # own rule, in Python, with its errors (AttributeError for what is not a filter).
        include = [f for f in filters if f.inclusive]
        exclude = [f for f in filters if not f.inclusive]

        def keep(trace):
            if include and not any(f._match(trace) for f in include):
                return False
            return not any(not f._match(trace) for f in exclude)
        return Snapshot([t for t in self._data if keep(t)], self.traceback_limit)

    @staticmethod
    def _key(key_type, cumulative):
        try:
            known = key_type in _KEYS
        except TypeError:                     # unhashable: tracemalloc says ValueError too
            known = False
        if not known:
            raise ValueError("unknown key_type: %r" % (key_type,))
        if cumulative and key_type not in ("lineno", "filename"):
            raise ValueError("cumulative mode cannot by used with key type %r" % key_type)
        return _KEYS[key_type]

    def _group_by(self, key_type, cumulative):
        # tracemalloc's private grouping: {Traceback: Statistic}
        return {stat.traceback: stat for stat in self.statistics(key_type, cumulative)}

    def statistics(self, key_type, cumulative=False):
        """Statistic list grouped by key_type ('filename', 'lineno' or 'traceback'), largest
        first."""
        key = self._key(key_type, cumulative)
        return [Statistic(Traceback(frames), size, count)
                for size, count, frames in self._data.statistics(key, bool(cumulative))]

    def compare_to(self, old_snapshot, key_type, cumulative=False):
        """StatisticDiff list against old_snapshot, largest absolute change first."""
        key = self._key(key_type, cumulative)
        rows = self._data.compare_to(old_snapshot._data, key, bool(cumulative))
        return [StatisticDiff(Traceback(frames), size, size_diff, count, count_diff)
                for size, size_diff, count, count_diff, frames in rows]


def get_object_traceback(obj):
    """The Traceback where obj was allocated, or None when it was not traced."""
    frames = _heapsnap._get_object_traceback(obj)
    return Traceback(frames) if frames is not None else None


def _get_traces():
    """The raw traces, (domain, size, frames, total_nframe) tuples, as tracemalloc's private
    _get_traces() gives them."""
    if not is_tracing():
        return []
    return list(_heapsnap._take_snapshot())


def take_snapshot():
    """A Snapshot of the traces of every live traced block."""
    if _get_traces is not _own_get_traces:
        # replaced (CPython's tests do this): take_snapshot() is made of it, as tracemalloc's is
        if not is_tracing():
            raise RuntimeError("the tracemalloc module must be tracing memory "
                               "allocations to take a snapshot")
        return Snapshot(_get_traces(), get_traceback_limit())
    data = _heapsnap._take_snapshot()     # first: nothing this function allocates is in it
    return Snapshot._wrap(data)


_own_get_traces = _get_traces


class LeakSuspect:
    """A key (Traceback) whose memory grew over a series of snapshots, as the engine judges it
    (the method of `heapsnap leaks`, docs/LEAKS.md).  Not in tracemalloc.

    str() names the allocation site (the most recent frame), the growth and the confidence.
    """

    __slots__ = ("traceback", "size_growth", "count_growth", "size_first", "size_last",
                 "count_first", "count_last", "sizes", "rate_bytes_per_second",
                 "rate_bytes_per_snapshot", "confidence", "trend", "steadiness", "ending",
                 "support")

    def __init__(self, fields):
        for name in self.__slots__[1:]:
            setattr(self, name, fields[name])
        self.traceback = Traceback(fields["frames"])

    def __str__(self):
        return "%s: %s in %+d blocks (now %s in %d), %s per snapshot, confidence %.2f" % (
            self.traceback[-1], _format_size(self.size_growth, True), self.count_growth,
            _format_size(self.size_last, False), self.count_last,
            _format_size(self.rate_bytes_per_snapshot, True), self.confidence)

    def __repr__(self):
        return "<LeakSuspect %s size_growth=%d confidence=%.2f>" % (
            self.traceback[-1], self.size_growth, self.confidence)


def leaks(snapshots, key_type="traceback", min_confidence=0.5, min_growth=1):
    """The keys that keep growing over snapshots (at least 4, in time order), largest growth
    first: heapsnap's leak verdict (trend x steadiness x ending x support), run in C."""
    if key_type not in _KEYS:
        raise ValueError("unknown key_type: %r" % (key_type,))
    rows = _heapsnap.leaks([s._data for s in snapshots], _KEYS[key_type],
                           float(min_confidence), int(min_growth))
    return [LeakSuspect(r) for r in rows]
