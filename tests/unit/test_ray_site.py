"""ray.<host> (issue 11 item 3) under Pulumi mocks: the head's RayNode serves Ray's dashboard and Jobs API through
Caddy behind the dashboard password, and only when there is one."""
from __future__ import annotations

import bcrypt

from components.layout import REMOTE_HOOKS
from ops.offline import evaluate
from tests.unit.helpers import base_config

COMMAND = "command:remote:Command"
PASSWORD = "correct-horse-battery"


def test_the_head_serves_ray_host_behind_the_password_and_passes_the_clients_token(pem):
    evaluation = evaluate(base_config(pem, cluster={"workers": 1}, dashboardPassword=PASSWORD), "sweep").ok()
    assert evaluation.outputs["rayDashboardUrl"] == "https://ray.elif.my-experiments.org"
    site = evaluation.one(COMMAND, "sweep-ray-site").inputs
    assert site["create"] == f"sudo -n {REMOTE_HOOKS}/ray-site.sh caddy:2"
    lines = site["stdin"].splitlines()
    assert lines[0] == "ray.elif.my-experiments.org {"
    user, hashed = lines[lines.index("\tbasicauth {") + 1].split()
    assert user == "admin" and bcrypt.checkpw(PASSWORD.encode(), hashed.encode())
    assert "\t\theader_up Authorization {http.request.header.Proxy-Authorization}" in lines
    assert "\treverse_proxy {{UPSTREAM}} {" in lines
    # only the head serves it
    assert [r.name for r in evaluation.of_type(COMMAND) if r.name.endswith("-ray-site")] == ["sweep-ray-site"]


def test_without_a_dashboard_password_no_site_and_no_url(pem):
    evaluation = evaluate(base_config(pem, cluster={"workers": 1}), "sweep").ok()
    assert not [r.name for r in evaluation.of_type(COMMAND) if r.name.endswith("-ray-site")]
    assert "rayDashboardUrl" not in evaluation.outputs
