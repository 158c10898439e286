"""A read-only gate to the Docker API for labstack's log viewer: the only calls it needs pass, nothing else.

The Docker socket is root on the server, so the log viewer never gets it. This gate holds it instead, runs with no
network at all (network_mode: none) and listens on a Unix socket in a directory shared with the log viewer alone
(labstack's PROXY_DOCKER_API). It forwards exactly the two calls the log viewer (logviewer.py) makes: GET the container
list and GET one container's logs (never followed), with only the query parameters the viewer sends; anything else
gets 403. Not even a container's inspect: it holds the container's environment (an app's secrets, DATABASE_URL with
the database password). Standard library only.
"""
import http.client
import os
import re
import socket
import socketserver
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler

DOCKER_SOCKET = "/var/run/docker.sock"
LISTEN = sys.argv[1] if len(sys.argv) > 1 else "/run/labstack-docker/docker.sock"
VERSION = r"(?:/v[0-9]+\.[0-9]+)?"
CONTAINER = r"[0-9a-f]{12,64}"
# path pattern -> the query parameters that call may carry: the log viewer's calls (app_containers, the logs read)
ALLOWED = {
    re.compile(rf"^{VERSION}/containers/json$"): {"all", "filters"},
    re.compile(rf"^{VERSION}/containers/{CONTAINER}/logs$"): {"stdout", "stderr", "timestamps", "tail"},
}


def allowed(method, target):
    if method != "GET":
        return False
    url = urllib.parse.urlsplit(target)
    query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
    for pattern, parameters in ALLOWED.items():
        if pattern.match(url.path):
            return set(query) <= parameters
    return False


class DockerSocket(http.client.HTTPConnection):
    def __init__(self):
        super().__init__("localhost", timeout=30)

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(DOCKER_SOCKET)


class Handler(BaseHTTPRequestHandler):
    server_version = "labstack-docker-api-gate"

    def do_GET(self):  # noqa: N802 - the http.server API
        self.forward()

    def do_POST(self):  # noqa: N802
        self.forward()

    do_PUT = do_DELETE = do_HEAD = do_PATCH = do_POST

    def forward(self):
        if not allowed(self.command, self.path):
            return self.reply(403, "text/plain; charset=utf-8", b"labstack: this Docker API call is not allowed\n")
        docker = DockerSocket()
        try:
            docker.request("GET", self.path)
            response = docker.getresponse()
            body = response.read()
            return self.reply(response.status, response.getheader("Content-Type", "application/octet-stream"), body)
        except OSError as error:
            return self.reply(502, "text/plain; charset=utf-8", f"cannot reach the Docker API: {error}\n".encode())
        finally:
            docker.close()

    def reply(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args):  # a Unix socket client has no address to log
        pass


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


if __name__ == "__main__":
    if os.path.exists(LISTEN):
        os.unlink(LISTEN)  # left by the previous container
    os.umask(0o077)  # the socket: root (the log viewer's user) only
    Server(LISTEN, Handler).serve_forever()
