"""labstack's log viewer: recent logs of one app's containers, as plain text, for the people running the experiment.

Runs in the proxy's compose project (hooks/proxy-up.sh) when `labstack:logViewer` is true. Only Caddy reaches it,
behind the dashboard's basic auth, and Caddy says which app is asked for (X-Labstack-App), so each app's site
shows that app's logs only. It reads the Docker API through labstack's read-only gate (docker_api_proxy.py), never
the Docker socket itself. Standard library only.

  GET /labstack-logs/            the app's services and their containers
  GET /labstack-logs/<service>   the last lines (?tail=N, at most 5000) of that service's newest container
"""
import http.client
import json
import os
import re
import socket
import struct
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SOCKET = os.environ["LABSTACK_DOCKER_SOCKET"]  # the gate's socket
LABEL_APP = os.environ["LABSTACK_LABEL_APP"]  # the app label every container labstack starts carries
PREFIX = "/labstack-logs"
APP_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
SERVICE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


class DockerSocket(http.client.HTTPConnection):
    def __init__(self):
        super().__init__("localhost", timeout=20)

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(20)
        self.sock.connect(SOCKET)


def docker_get(path):
    connection = DockerSocket()
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def app_containers(app):
    """The app's containers (its releases' and its data services'), by their app label, newest first."""
    filters = urllib.parse.quote(json.dumps({"label": [f"{LABEL_APP}={app}"]}))
    status, body = docker_get(f"/containers/json?all=1&filters={filters}")
    if status != 200:
        raise RuntimeError(f"docker answered {status}")
    return sorted(json.loads(body), key=lambda c: c.get("Created", 0), reverse=True)


def demultiplex(raw):
    """Docker's log stream without a TTY: 8-byte frame headers (stream, 0, 0, 0, big-endian length)."""
    out, offset = [], 0
    while offset + 8 <= len(raw):
        length = struct.unpack(">I", raw[offset + 4:offset + 8])[0]
        out.append(raw[offset + 8:offset + 8 + length])
        offset += 8 + length
    return b"".join(out) if out else raw


class Handler(BaseHTTPRequestHandler):
    server_version = "labstack-logviewer"

    def do_GET(self):  # noqa: N802 - the http.server API
        app = self.headers.get("X-Labstack-App", "")
        url = urllib.parse.urlsplit(self.path)
        if not APP_RE.match(app) or not (url.path == PREFIX or url.path.startswith(PREFIX + "/")):
            return self.reply(404, "not found\n")
        service = url.path[len(PREFIX):].strip("/")
        try:
            containers = app_containers(app)
        except (OSError, RuntimeError, ValueError) as error:
            return self.reply(502, f"cannot read the Docker API: {error}\n")
        if not service:
            lines = [f"logs of {app} (newest container per service first):"]
            for c in containers:
                labels = c.get("Labels", {})
                lines.append(f"  {labels.get('com.docker.compose.service')}\t{c.get('State')}\t"
                             f"{labels.get('com.docker.compose.project')}\t{PREFIX}/{labels.get('com.docker.compose.service')}")
            return self.reply(200, "\n".join(lines) + "\n")
        if not SERVICE_RE.match(service):
            return self.reply(404, "no such service\n")
        matching = [c for c in containers if c.get("Labels", {}).get("com.docker.compose.service") == service]
        if not matching:
            return self.reply(404, f"{app} has no {service} container\n")
        wanted = urllib.parse.parse_qs(url.query).get("tail", ["300"])[0]
        tail = min(int(wanted), 5000) if wanted.isdigit() else 300
        status, raw = docker_get(f"/containers/{matching[0]['Id']}/logs?stdout=1&stderr=1&timestamps=1&tail={tail}")
        if status != 200:
            return self.reply(502, f"docker answered {status}\n")
        return self.reply(200, demultiplex(raw).decode("utf-8", "replace"))

    def reply(self, status, text):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # access logs are Caddy's job
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
