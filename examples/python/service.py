#!/usr/bin/env python3
"""A service loop that leaks through a third-party-like HTTP helper (vendor/httphelper.py).

It starts a small JSON server on 127.0.0.1 (http.server, in a thread), then handles `requests`
work items: each one fetches a record through httphelper.Session, computes a summary and keeps
it in a bounded LRU cache.  The cache fills up and stays flat; the helper's session keeps every
response's headers forever: that is the leak.

    python3 service.py [requests] [--hunt [every]]

--hunt runs the tracemalloc recipe with heapsnap as tracemalloc: a snapshot every `every`
requests, compared with the first one, keeping only the helper's files through an inclusive
Filter.  Without --hunt the program knows nothing of heapsnap: run it under
`heapsnap run --interval 0.5 -o out -- python3 service.py 2000` and ask `heapsnap leaks out`.
"""
import json
import os
import sys
import threading
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor"))
import httphelper  # noqa: E402


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        n = int(self.path.rsplit("=", 1)[-1]) if "=" in self.path else 0
        body = json.dumps({"id": n, "name": "record-%d" % n, "values": list(range(n % 20))})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Request-Id", "req-%08d" % n)
        self.send_header("X-Trace", "trace-" + "%x" % (n * 2654435761 % 2 ** 32) * 4)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


class LRU:
    """A bounded cache: it grows until it is full, then stays flat (not a leak)."""

    def __init__(self, size):
        self.size, self.data = size, OrderedDict()

    def put(self, key, value):
        self.data[key] = value
        self.data.move_to_end(key)
        if len(self.data) > self.size:
            self.data.popitem(last=False)


def handle(session, cache, i):
    record = session.get("/records", {"id": i}).json()
    summary = {"id": record["id"], "total": sum(record["values"]), "name": record["name"]}
    cache.put(i % 500, summary)
    scratch = [str(v) * 10 for v in record["values"]]        # freed at once
    return len(scratch)


def main():
    args = sys.argv[1:]
    requests = int(args[0]) if args and args[0].isdigit() else 1000
    hunt = "--hunt" in args
    every = int(args[args.index("--hunt") + 1]) if hunt and args.index("--hunt") + 1 < len(args) \
        else max(1, requests // 4)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    session = httphelper.Session("http://127.0.0.1:%d" % server.server_address[1])
    cache = LRU(200)
    if hunt:
        import heapsnap as tracemalloc
        tracemalloc.start(10)
        helper = [tracemalloc.Filter(True, "*/vendor/*")]
        first = tracemalloc.take_snapshot().filter_traces(helper)
    for i in range(requests):
        handle(session, cache, i)
        if hunt and (i + 1) % every == 0:
            snap = tracemalloc.take_snapshot().filter_traces(helper)
            print("[ after %d requests: top 3 differences in the helper's files ]" % (i + 1))
            for stat in snap.compare_to(first, "lineno")[:3]:
                print(stat)
    server.shutdown()
    print("served %d requests" % requests)


if __name__ == "__main__":
    main()
