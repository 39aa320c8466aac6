"""A webhook receiver for the browser tests: answers 200 to every POST and appends the
idempotency key and body to the file given, one JSON line each.

    receiver.py PORT LOG_FILE
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

PORT, LOG = int(sys.argv[1]), sys.argv[2]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        with open(LOG, "a") as log:
            key = self.headers.get("x-awoooi-idempotency-key")
            log.write(json.dumps({"key": key, "body": body.decode("utf-8", "replace")}) + "\n")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
