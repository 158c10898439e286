#!/usr/bin/env python3
"""Print the docker password for an ECR registry, got with the server's instance role (hooks/ecr-login.sh pipes it
into `docker login`). The AWS CLI is not on Ubuntu by default, so this signs ECR's GetAuthorizationToken call itself
(Signature Version 4, standard library only) with the role credentials the instance metadata service gives (IMDSv2:
the hop limit of 1 lets the host itself ask, not its containers).
Usage: ecr-token.py REGISTRY   (<account>.dkr.ecr.<region>.amazonaws.com)
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import re
import sys
import urllib.error
import urllib.request

REGISTRY_RE = re.compile(r"^\d{12}\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?P<china>\.cn)?$")
# Tests point these at local stand-ins; on a server they are unset (sudo resets the environment).
IMDS = os.environ.get("LABSTACK_IMDS_URL", "http://169.254.169.254")
ECR_URL = os.environ.get("LABSTACK_ECR_URL")
TARGET = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
TIMEOUT = 10


def fetch(url: str, data: bytes | None = None, headers: dict | None = None, method: str = "GET") -> bytes:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        return response.read()


def role_credentials() -> dict:
    """The instance role's temporary credentials (AccessKeyId, SecretAccessKey, Token) from IMDSv2."""
    token = fetch(f"{IMDS}/latest/api/token", method="PUT",
                  headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}).decode()
    auth = {"X-aws-ec2-metadata-token": token}
    base = f"{IMDS}/latest/meta-data/iam/security-credentials/"
    try:
        role = fetch(base, headers=auth).decode().split()[0]
    except (urllib.error.HTTPError, IndexError):
        raise SystemExit("ecr-token: this server has no instance role; labstack gives it one when an app image is "
                         "on ECR (run `pulumi up`)") from None
    return json.loads(fetch(base + role, headers=auth))


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signed_headers(host: str, region: str, body: bytes, credentials: dict, now: datetime.datetime) -> dict:
    """The headers of a SigV4-signed POST / to ECR's JSON API."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    headers = {"content-type": "application/x-amz-json-1.1", "host": host, "x-amz-date": amz_date,
               "x-amz-security-token": credentials["Token"], "x-amz-target": TARGET}
    names = ";".join(sorted(headers))
    canonical = "\n".join(["POST", "/", "", "".join(f"{name}:{headers[name]}\n" for name in sorted(headers)), names,
                           hashlib.sha256(body).hexdigest()])
    scope = f"{day}/{region}/ecr/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + credentials["SecretAccessKey"]).encode()
    for part in (day, region, "ecr", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={credentials['AccessKeyId']}/{scope}, "
                                f"SignedHeaders={names}, Signature={signature}")
    return headers


def registry_password(registry: str) -> str:
    match = REGISTRY_RE.match(registry)
    if not match:
        raise SystemExit(f"ecr-token: {registry!r} is not an ECR registry (<account>.dkr.ecr.<region>.amazonaws.com)")
    region = match["region"]
    host = f"api.ecr.{region}.amazonaws.com{match['china'] or ''}"
    body = b"{}"
    headers = signed_headers(host, region, body, role_credentials(), datetime.datetime.now(datetime.timezone.utc))
    try:
        answer = json.loads(fetch(ECR_URL or f"https://{host}/", data=body, headers=headers, method="POST"))
    except urllib.error.HTTPError as error:
        raise SystemExit(f"ecr-token: ECR refused the login ({error.code}): "
                         f"{error.read().decode(errors='replace')[:300]}") from None
    user_and_password = base64.b64decode(answer["authorizationData"][0]["authorizationToken"]).decode()
    return user_and_password.partition(":")[2]  # "AWS:<password>"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: ecr-token.py REGISTRY")
    print(registry_password(sys.argv[1]))
