"""The post-deploy response as `pulumi up` shows it: read back from the deploy hook's stdout, secrets masked."""
from __future__ import annotations

import base64
import binascii
from typing import Iterable, Optional

from components.layout import POST_DEPLOY_MARK

MASK = "[secret]"


def post_deploy_summary(stdout: Optional[str], secrets: Iterable[Optional[str]]) -> Optional[str]:
    """"HTTP <status>" and the body's first lines from the hook's last post-deploy line, every secret value (the
    app's secrets, the dashboard password) replaced by [secret]; None when no post-deploy request ran."""
    lines = [line.split() for line in (stdout or "").splitlines() if line.startswith(POST_DEPLOY_MARK + " ")]
    if not lines:
        return None
    status, encoded = (lines[-1][1:] + [""])[:2]
    try:
        body = base64.b64decode(encoded, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        body = "(the response body could not be read back)"
    # Longest first: a secret that contains another is masked whole.
    for secret in sorted({value for value in secrets if value}, key=len, reverse=True):
        body = body.replace(secret, MASK)
    return f"HTTP {status}\n{body}".rstrip("\n")
