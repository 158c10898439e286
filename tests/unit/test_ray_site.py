"""ray.<host> under Pulumi mocks: the head's RayNode serves Ray's dashboard and Jobs API through
Caddy behind the dashboard password, and only when there is one."""
from __future__ import annotations

import hashlib

import bcrypt

from components.layout import REMOTE_HOOKS
from labstack.stacks.offline import evaluate
from tests.unit.helpers import base_config

COMMAND = "command:remote:Command"
PASSWORD = "correct-horse-battery"


def test_the_head_serves_ray_host_behind_the_password_and_passes_the_clients_token(pem):
    evaluation = evaluate(base_config(pem, cluster={"workers": 1}, dashboardPassword=PASSWORD), "sweep").ok()
    assert evaluation.outputs["rayDashboardUrl"] == "https://ray.elif.experiments.test"
    site = evaluation.one(COMMAND, "sweep-ray-site").inputs
    assert site["create"] == f"sudo -n {REMOTE_HOOKS}/ray-site.sh caddy:2"
    lines = site["stdin"].splitlines()
    assert lines[0] == "ray.elif.experiments.test {"
    # every request but the browser's token login passes the password first, in this order (a route)
    route = lines[lines.index("\thandle {") + 1:]
    assert route[:2] == ["\t\troute {", "\t\t\tbasicauth {"]
    user, hashed = route[2].split()
    assert user == "admin" and bcrypt.checkpw(PASSWORD.encode(), hashed.encode())
    # then the browser gets its mark (a digest of the hash, neither the password nor the token) ...
    mark = hashlib.sha256(f"labstack-ray-login:{hashed}".encode()).hexdigest()
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
