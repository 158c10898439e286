"""The server's ECR login with its instance role: hooks/ecr-token.py against local stand-ins for the instance metadata
service (IMDSv2) and ECR, its Signature Version 4 checked by botocore's signer; hooks/ecr-login.sh with a fake docker."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

HOOKS = Path(__file__).resolve().parents[2] / "hooks"
FAKE_COMMAND = Path(__file__).parent / "fakes" / "fake-command.sh"
REGISTRY = "123456789012.dkr.ecr.eu-west-3.amazonaws.com"
ROLE = {"AccessKeyId": "ASIAEXAMPLEKEY", "SecretAccessKey": "role/secret+key", "Token": "session-token=="}
IMDS_TOKEN = "imds-v2-token"
PASSWORD = "ecr-password-for-twelve-hours"


class Stand_in(BaseHTTPRequestHandler):
    """IMDSv2 (PUT a token first, then GETs carrying it) and ECR's GetAuthorizationToken on one port."""
    seen: list[dict] = []
    role: str | None = "labstack-node-role"

    def log_message(self, *args):
        pass

    def answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        ok = self.path == "/latest/api/token" and self.headers["X-aws-ec2-metadata-token-ttl-seconds"]
        self.answer(200 if ok else 400, IMDS_TOKEN.encode())

    def do_GET(self):
        if self.headers["X-aws-ec2-metadata-token"] != IMDS_TOKEN:
            return self.answer(401, b"")  # IMDSv1 is off on labstack's nodes
        base = "/latest/meta-data/iam/security-credentials/"
        if self.path == base and self.role:
            return self.answer(200, self.role.encode())
        if self.role and self.path == base + self.role:
            return self.answer(200, json.dumps({"Code": "Success", **ROLE}).encode())
        self.answer(404, b"")

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Stand_in.seen.append({"headers": dict(self.headers), "body": body})
        token = base64.b64encode(f"AWS:{PASSWORD}".encode()).decode()
        self.answer(200, json.dumps({"authorizationData": [{"authorizationToken": token,
                                                            "proxyEndpoint": f"https://{REGISTRY}"}]}).encode())


@pytest.fixture
def stand_in():
    Stand_in.seen, Stand_in.role = [], "labstack-node-role"
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stand_in)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    yield {**os.environ, "LABSTACK_IMDS_URL": url, "LABSTACK_ECR_URL": url + "/"}
    server.shutdown()


def expected_signature(headers: dict, body: bytes) -> str:
    """botocore's own SigV4 of the same request (same time, same credentials)."""
    request = AWSRequest(method="POST", url="https://api.ecr.eu-west-3.amazonaws.com/", data=body, headers={
        "Content-Type": headers["Content-Type"], "X-Amz-Target": headers["X-Amz-Target"],
        "X-Amz-Date": headers["X-Amz-Date"], "X-Amz-Security-Token": headers["X-Amz-Security-Token"]})
    request.context["timestamp"] = headers["X-Amz-Date"]
    signer = SigV4Auth(Credentials(ROLE["AccessKeyId"], ROLE["SecretAccessKey"], ROLE["Token"]), "ecr", "eu-west-3")
    canonical = signer.canonical_request(request)
    return signer.signature(signer.string_to_sign(request, canonical), request)


def test_the_token_comes_from_the_instance_role_with_a_valid_signature(stand_in):
    result = subprocess.run(["python3", str(HOOKS / "ecr-token.py"), REGISTRY], env=stand_in, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == PASSWORD + "\n"
    [call] = Stand_in.seen
    headers = call["headers"]
    assert call["body"] == b"{}"
    assert headers["Host"] == "api.ecr.eu-west-3.amazonaws.com"
    assert headers["X-Amz-Target"] == "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
    assert headers["X-Amz-Security-Token"] == ROLE["Token"]
    day = headers["X-Amz-Date"][:8]
    assert headers["Authorization"] == (
        f"AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEKEY/{day}/eu-west-3/ecr/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, "
        f"Signature={expected_signature(headers, call['body'])}")


def test_a_server_without_a_role_says_so(stand_in):
    Stand_in.role = None
    result = subprocess.run(["python3", str(HOOKS / "ecr-token.py"), REGISTRY], env=stand_in, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 1 and Stand_in.seen == []
    assert result.stderr.strip() == ("ecr-token: this server has no instance role; labstack gives it one when an app "
                                     "image is on ECR (run `pulumi up`)")


def fake_docker(tmp_path: Path, env: dict) -> dict:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "docker").symlink_to(FAKE_COMMAND)
    return {**env, "PATH": f"{tmp_path / 'bin'}:{env['PATH']}", "FAKE_DIR": str(tmp_path)}


def test_login_hook_logs_in_to_ecr_only(stand_in, tmp_path):
    env = fake_docker(tmp_path, stand_in)
    other = subprocess.run([str(HOOKS / "ecr-login.sh"), "ghcr.io/lab/poll@sha256:" + "0" * 64], env=env,
                           capture_output=True, text=True, timeout=30)
    assert other.returncode == 0 and not (tmp_path / "calls").exists() and Stand_in.seen == []
    ecr = subprocess.run([str(HOOKS / "ecr-login.sh"), f"{REGISTRY}/lab/elif@sha256:" + "4be1c0de" * 8], env=env,
                         capture_output=True, text=True, timeout=30)
    assert ecr.returncode == 0, ecr.stderr
    assert (tmp_path / "calls").read_text() == f"docker login --username AWS --password-stdin {REGISTRY}\n"
    assert ecr.stderr == f"labstack: logged in to {REGISTRY} with the instance role\n"
