"""An HTTP endpoint that keeps every POST it gets (runs inside a container).

    python3 http_sink.py PORT DIR

Each request is saved in DIR as JSON: path, content type and body; it answers 200 "ok".
"""

import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, FOLDER = int(sys.argv[1]), sys.argv[2]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode(errors="replace")
        request = {"path": self.path, "content_type": self.headers.get("Content-Type"), "body": body}
        name = os.path.join(FOLDER, f"{time.time():.6f}.json")
        with open(name + ".part", "w") as handle:
            json.dump(request, handle)
        os.rename(name + ".part", name)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


os.makedirs(FOLDER, exist_ok=True)
ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
