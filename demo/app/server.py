"""The demo application: answers /healthz with the release it runs from."""
import http.server
import os
import pathlib

VERSION = (pathlib.Path(__file__).parent / "VERSION").read_text().strip()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"ok {VERSION}\n".encode()
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
