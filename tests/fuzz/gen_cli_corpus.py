#!/usr/bin/env python3
"""Seeds for the command-line fuzz targets, written into DIR/fuzz_pattern and DIR/fuzz_args.

The committed corpora (tests/fuzz/corpus/fuzz_pattern, .../fuzz_args) are these seeds plus what
fuzzing found, minimised with -merge=1.  Input layouts are described at the top of
tests/fuzz/fuzz_pattern.c and tests/fuzz/fuzz_args.c.

    tests/fuzz/gen_cli_corpus.py DIR
"""
import sys
from pathlib import Path

# Patterns worth starting from: SPEC 5 examples, set edge cases, the documented differences
# from Python 3.11 and from glibc, patterns that are exponential for a backtracking matcher,
# one longer than the 32 tokens a glob keeps inline.
PATTERNS = [
    (b"*", b"a/b/c.c"), (b"*.c", b"src/a.c"), (b"a.c", b"a.c"), (b"<unknown>", b"<unknown>"),
    (b"*/sessions.c", b"/work/examples/service/sessions.c"), (b"src/*.c", b"src/x/y.c"),
    (b"[!a-c]x", b"dx"), (b"[]]", b"]"), (b"[!]]", b"a"), (b"[a-]", b"-"), (b"[]-a]", b"^"),
    (b"[b-a]", b"b"), (b"[!b-a]", b"x"), (b"[b-a!/]", b"!"), (b"[a-c-e]", b"-"),
    (b"[*-", b"[-"), (b"[^a]", b"^"), (b"[[:alpha:]]", b"a"), (b"a\\*", b"a\\xyz"),
    (b"a[b", b"a[b"), (b"*a*a*a*a*a*a*b", b"a" * 60), (b"?" * 40, b"x" * 40),
    (b"[\x80-\xff]", b"\xe9"), (b"x?c", b"x\nc"), (b"a.py", b"a.pyc"), (b"A.c", b"a.c"),
]

# (first byte, arguments): raw inputs for fuzz_args, the first byte names the subcommand
# (byte / 2 % 8: run snapshot top diff leaks timeline export info); even = raw.
COMMANDS = ["run", "snapshot", "top", "diff", "leaks", "timeline", "export", "info"]
RAW = [
    ("run", ["-n", "8", "-o", "out", "--interval", "0.5", "--alloc-fn", "xmalloc",
             "--alloc-fn", "g_malloc*", "--follow-fork", "-q", "--", "prog", "arg"]),
    ("run", ["--frames=65535", "--", "prog"]), ("run", ["--frames", "0", "--", "prog"]),
    ("run", ["--interval", "1e3", "prog"]), ("run", ["--alloc-fn", "a:b", "prog"]),
    ("run", ["--help"]), ("run", []), ("run", ["-qn3", "prog"]),
    ("snapshot", ["--timeout", "5", "1234"]), ("snapshot", ["0"]), ("snapshot", ["x"]),
    ("top", ["--by", "traceback", "-l", "2", "--traceback-limit", "-3", "s.hsnap"]),
    ("top", ["--by=filename", "--cumulative", "--include", "*/a.c", "--exclude", "<unknown>",
             "--lineno", "4", "--all-frames", "--domain", "0", "--json", "s.hsnap"]),
    ("top", ["--by", "traceback", "--cumulative", "s.hsnap"]), ("top", ["-l", "-1", "s"]),
    ("diff", ["--limit=0", "old.hsnap", "new.hsnap"]), ("diff", ["only-one"]),
    ("leaks", ["--min-confidence", "0.9", "--fail-on-leak", "--by", "lineno", "dir"]),
    ("leaks", ["--by", "filename", "dir"]), ("leaks", ["--min-confidence", "nan", "d"]),
    ("timeline", ["--rows", "0", "dir"]), ("timeline", ["-r", "x", "dir"]),
    ("export", ["s.hsnap", "--format", "pprof", "-o", "p.pb.gz", "--base", "o.hsnap"]),
    ("export", ["s.hsnap", "--format", "xml"]), ("export", ["s.hsnap"]),
    ("info", ["a.hsnap", "b.hsnap"]), ("info", ["--bogus"]),
]


def main():
    out = Path(sys.argv[1])
    (out / "fuzz_pattern").mkdir(parents=True, exist_ok=True)
    (out / "fuzz_args").mkdir(parents=True, exist_ok=True)
    model = bytes([6, 0x09, 3, 0x11, 0x1a, 0x06, 2, 0x22, 0x0b, 5, 0x03, 0x41, 0x85, 0xc6,
                   0x07, 0x2d, 0x80, 4, 0x00, 0x0d, 0x05, 0x07, 0x0f])
    for i, (p, s) in enumerate(PATTERNS):
        (out / "fuzz_pattern" / f"seed-{i:02d}").write_bytes(p + b"\0" + s + b"\0" + model)
    for i, (cmd, argv) in enumerate(RAW):
        first = bytes([COMMANDS.index(cmd) * 2])
        data = first + b"\0".join(a.encode() for a in argv)
        (out / "fuzz_args" / f"seed-raw-{i:02d}").write_bytes(data)
    # Modelled inputs (odd first byte): run, top, diff, leaks with a few options each.
    for i, b in enumerate([1, 3, 5, 7]):
        data = bytes([b, 6, 0, 0, 1, 2, 1, 3, 3, 0, 4, 7, 5, 1, 6, 2, 7, 0, 8, 4, 11, 9, 1, 2])
        (out / "fuzz_args" / f"seed-model-{i}").write_bytes(data)


if __name__ == "__main__":
    main()
