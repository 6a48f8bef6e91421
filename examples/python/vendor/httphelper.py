"""A small HTTP client helper, standing in for a third-party library (think of a vendored
`requests`-like session).  It has a bug of the kind that such libraries do have: the session keeps
the headers of every response it ever received, "for debugging", and never prunes them.
"""
import http.client
import json
from urllib.parse import urlsplit


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)


class Session:
    def __init__(self, base_url, timeout=5.0):
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.timeout = timeout
        self.default_headers = {"User-Agent": "httphelper/1.0", "Accept": "application/json"}
        self.history = []          # every response's headers: the leak

    def _connect(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def get(self, path, params=None):
        if params:
            path += "?" + "&".join("%s=%s" % kv for kv in sorted(params.items()))
        conn = self._connect()
        try:
            conn.request("GET", path, headers=self.default_headers)
            resp = conn.getresponse()
            body = resp.read()
            headers = {k.lower(): v for k, v in resp.getheaders()}
            self.history.append(headers)                       # LEAK: never pruned
            return Response(resp.status, headers, body)
        finally:
            conn.close()
