"""The post-deploy response as `pulumi up` shows it: read back from the deploy hook's stdout, secrets masked.

Masking rule: a secret value (the app's secrets, the dashboard password) is masked wherever it occurs, longest first
(a secret containing another is masked whole), if it is at least MIN_SECRET_LENGTH characters long: a shorter value
(`1`, `true`, `debug`) is not secret-like, and masking it would cut words and links apart wherever those characters
occur. Inside a URL (`scheme://...`) the scheme and host:port are never masked, the secret is also found
percent-encoded, and only its characters between URL delimiters (`/?#&=:@;+,` ...) are replaced, by URL_MASK (letters
only), so a masked link keeps its structure: the same host, path segments and query parameters.
"""
from __future__ import annotations

import base64
import binascii
import re
from typing import Iterable, Optional
from urllib.parse import quote

from components.layout import POST_DEPLOY_MARK

MASK = "[secret]"
URL_MASK = "SECRET"  # unreserved characters only: a URL parses into the same parts once masked
MIN_SECRET_LENGTH = 8
URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s<>\"'`]+")
# scheme://, optional userinfo@ (maskable), host:port (never masked)
URL_HEAD = re.compile(r"(?P<scheme>[^:]+://)(?P<userinfo>[^/?#@]*@)?(?P<host>[^/?#]*)")
NOT_DELIMITER = re.compile(r"[^:/?#\[\]@!$&'()*+,;=]+")


def _mask_in_url(url: str, secrets: list[str]) -> str:
    head = URL_HEAD.match(url)
    if not head:
        return url
    userinfo, rest = head.group("userinfo") or "", url[head.end():]

    def masked(part: str) -> str:
        for secret in secrets:
            # Percent-encoded, it holds no delimiter: masked whole.
            part = part.replace(quote(secret, safe=""), URL_MASK)
            part = part.replace(secret, NOT_DELIMITER.sub(URL_MASK, secret))
        return part
    return head.group("scheme") + masked(userinfo) + head.group("host") + masked(rest)


def mask_secrets(text: str, secrets: Iterable[Optional[str]]) -> str:
    """`text` with every secret-like value masked (the module's rule)."""
    values = sorted({value for value in secrets if value and len(value) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
    if not values:
        return text
    pieces, last = [], 0
    for url in URL.finditer(text):
        pieces += [_mask_in_text(text[last:url.start()], values), _mask_in_url(url.group(), values)]
        last = url.end()
    return "".join(pieces + [_mask_in_text(text[last:], values)])


def _mask_in_text(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def post_deploy_summary(stdout: Optional[str], secrets: Iterable[Optional[str]]) -> Optional[str]:
    """"HTTP <status>" and the body's first lines from the hook's last post-deploy line, secrets masked (the
    module's rule); None when no post-deploy request ever ran."""
    lines = [line.split() for line in (stdout or "").splitlines() if line.startswith(POST_DEPLOY_MARK + " ")]
    if not lines:
        return None
    status, encoded = (lines[-1][1:] + [""])[:2]
    try:
        body = base64.b64decode(encoded, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        body = "(the response body could not be read back)"
    return f"HTTP {status}\n{mask_secrets(body, secrets)}".rstrip("\n")
