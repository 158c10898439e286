"""ray.<host> under Pulumi mocks: the head's RayNode serves Ray's dashboard and Jobs API through
Caddy behind the dashboard password, and only when there is one."""
from __future__ import annotations

import hashlib
import hmac
import re

import bcrypt

from components.layout import REMOTE_HOOKS
from components.render.images import infra_image
from labstack.stacks.offline import FakeAws, evaluate
from tests.unit.helpers import base_config

COMMAND = "command:remote:Command"
PASSWORD = "correct-horse-battery"


def test_the_head_serves_ray_host_behind_the_password_and_passes_the_clients_token(pem):
    evaluation = evaluate(base_config(pem, cluster={"workers": 1}, dashboardPassword=PASSWORD), "sweep").ok()
    assert evaluation.outputs["rayDashboardUrl"] == "https://ray.elif.experiments.test"
    site = evaluation.one(COMMAND, "sweep-ray-site").inputs
    assert site["create"] == f"sudo -n {REMOTE_HOOKS}/ray-site.sh {infra_image('caddy')}"
    assert "caddy:2@sha256:" in site["create"]  # pinned
    lines = site["stdin"].splitlines()
    assert lines[0] == "ray.elif.experiments.test {"
    # every request but the browser's token login passes the password first, in this order (a route)
    route = lines[lines.index("\thandle {") + 1:]
    assert route[:2] == ["\t\troute {", "\t\t\tbasicauth {"]
    user, hashed = route[2].split()
    assert user == "admin" and bcrypt.checkpw(PASSWORD.encode(), hashed.encode())
    # then the browser gets its mark (keyed by the stack's dashboard key: neither the password, the hash nor the
    # token, test_the_login_mark_is_keyed_by_a_state_secret_and_rotates_with_the_password) ...
    mark = re.search(r"labstack-ray-login=([0-9a-f]{64});", route[4]).group(1)
    assert route[4] == (f'\t\t\theader +Set-Cookie "labstack-ray-login={mark}; Path=/api/authenticate; Secure; '
                        'HttpOnly; SameSite=Strict"')
    # ... and Ray never sees the basic-auth header: only a client's Proxy-Authorization, as Authorization
    assert route[5:10] == ["\t\t\trequest_header -Authorization",
                           "\t\t\trequest_header @token Authorization {http.request.header.Proxy-Authorization}",
                           "\t\t\trequest_header -Proxy-Authorization", "\t\t\treverse_proxy {{UPSTREAM}}", "\t\t}"]
    assert "\t@token header Proxy-Authorization *" in lines
    # the token login (Ray's own prompt) passes without the password only with that mark, and only as a POST
    login = lines[lines.index("\t@login {") + 1:lines.index("\t@login {") + 5]
    assert login == ["\t\tmethod POST", "\t\tpath /api/authenticate", '\t\theader Authorization "Bearer *"',
                     f'\t\theader Cookie "*labstack-ray-login={mark}*"']
    assert '\t\t\theader_down Set-Cookie "^(ray-authentication-token=.+)$" "$1; Secure"' in lines
    assert PASSWORD not in site["stdin"]
    # only the head serves it
    assert [r.name for r in evaluation.of_type(COMMAND) if r.name.endswith("-ray-site")] == ["sweep-ray-site"]


def test_without_a_dashboard_password_no_site_and_no_url(pem):
    evaluation = evaluate(base_config(pem, cluster={"workers": 1}), "sweep").ok()
    assert not [r.name for r in evaluation.of_type(COMMAND) if r.name.endswith("-ray-site")]
    assert "rayDashboardUrl" not in evaluation.outputs


def ray_site(pem, password: str, aws: FakeAws) -> tuple[str, str, str]:
    """The head's Ray site for PASSWORD with the stack state AWS holds: its bcrypt hash, its login mark, its text."""
    evaluation = evaluate(base_config(pem, cluster={"workers": 1}, dashboardPassword=password), "sweep", aws).ok()
    text = evaluation.one(COMMAND, "sweep-ray-site").inputs["stdin"]
    hashed = re.search(r"\tadmin (\S+)\n", text).group(1)
    return hashed, re.search(r"labstack-ray-login=([0-9a-f]{64});", text).group(1), text


def test_the_login_mark_is_keyed_by_a_state_secret_and_rotates_with_the_password(pem):
    """The mark was a digest of the hash in the same file; now no file on the server yields it (the key that makes
    it is only in the stack's state), and a new password makes a new one, logging every browser out."""
    state = FakeAws()
    hashed, mark, text = ray_site(pem, PASSWORD, state)
    assert ray_site(pem, PASSWORD, state)[:2] == (hashed, mark)  # a redeploy: the same site file, nothing to do
    assert ray_site(pem, "another password", state)[1] != mark  # rotates with the password
    assert ray_site(pem, PASSWORD, FakeAws())[1] != mark  # another stack (another key): another mark
    for derived in (hashed, text.replace(mark, "")):  # not from the hash, not from the rest of the file
        assert mark not in {hashlib.sha256(f"labstack-ray-login:{derived}".encode()).hexdigest(),
                            hashlib.sha256(derived.encode()).hexdigest()}
    evaluation = evaluate(base_config(pem, cluster={"workers": 1}, dashboardPassword=PASSWORD), "sweep", state).ok()
    key_seed = evaluation.one("tls:index/privateKey:PrivateKey", "sweep-dashboard-key").outputs["privateKeyOpenssh"]
    key = hashlib.sha256(b"labstack dashboard key\0" + key_seed.encode()).hexdigest()
    assert mark == hmac.new(key.encode(), f"labstack-ray-login:{PASSWORD}".encode(), hashlib.sha256).hexdigest()
    assert key not in text and key_seed not in text
