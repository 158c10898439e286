"""The deploy layer under mocks: remote commands, their order, pinning, secrets, and the files they carry."""
from __future__ import annotations

import bcrypt
import pytest
import yaml

from components.config import ConfigError, load_stack_config

from components.render.bundle import read_bundle
from components.render.proxy import dashboard_password_hash
from labstack.stacks.offline import FakeAws, evaluate
from tests.unit.helpers import (STEP_PREREQUISITES, assert_deploy_dependencies, assert_deploy_order, base_config,
                                digest, recorded_dependencies, registered)

COMMAND = "command:remote:Command"
DIGEST = "sha256:" + digest("ab")
IMAGE = f"registry.example.org/psychlab/elif@{DIGEST}"


def deploy(pem, apps=None, aws=None, **overrides):
    apps = apps if apps is not None else {"elif": {"image": IMAGE, "host": "@", "workers": 2, "workerCommand": "python worker.py",
                                                   "env": {"mode": "live", "PRICE": "5$ each"}}}
    config = base_config(pem, apps=apps, **overrides)
    return evaluate(config, "paris-batch2", aws or FakeAws(zones={"experiments.test": "ZMYEXP"})).ok()


def commands(result):
    return {r.name: r for r in result.of_type(COMMAND)}


def bundle_of(result, name="paris-batch2-elif-deploy"):
    return {k: v.decode() for k, v in read_bundle(commands(result)[name].inputs["stdin"]).items()}


def test_steps_in_dependency_order_with_pinned_host_key(pem):
    with recorded_dependencies() as dependencies:
        result = deploy(pem, desiredState="running")
    names = [r.name for r in result.of_type(COMMAND)]
    assert_deploy_order(names)
    # SSH is tried only once the instance runs as the stack wants it (after `invoke start`, too).
    assert_deploy_dependencies(dependencies, readiness="paris-batch2-state")
    host_key = result.one("tls:index/privateKey:PrivateKey")
    assert host_key.inputs["algorithm"] == "ED25519"
    eip = result.one("aws:ec2/eip:Eip").outputs["publicIp"]
    for command in result.of_type(COMMAND):
        connection = command.inputs["connection"]
        assert connection["host"] == eip and connection["user"] == "ubuntu"
        assert connection["hostKey"] == " ".join(host_key.outputs["publicKeyOpenssh"].split()[:2])
        assert connection["privateKey"] == pem.read_text()
        assert connection["dialErrorLimit"] == 60 and connection["perDialTimeout"] == 10
        assert command.inputs["addPreviousOutputInEnv"] is False
        assert "connection" in command.secret_inputs  # the private key is a secret in state


def test_cloud_init_delivers_the_host_key_and_is_secret(pem):
    result = deploy(pem)
    instance = result.one("aws:ec2/instance:Instance")
    cloud = yaml.safe_load(instance.inputs["userData"])
    key = result.one("tls:index/privateKey:PrivateKey").outputs
    assert cloud["ssh_keys"] == {"ed25519_private": key["privateKeyOpenssh"],
                                 "ed25519_public": " ".join(key["publicKeyOpenssh"].split()[:2])}
    assert cloud["ssh_deletekeys"] is True and cloud["ssh_genkeytypes"] == []
    assert "userData" in instance.secret_inputs
    assert instance.inputs["userDataReplaceOnChange"] is True
    assert result.outputs["knownHosts"] == f"elif.experiments.test,{result.outputs['publicIp']} " \
                                           f"{cloud['ssh_keys']['ed25519_public']}"


def test_hook_commands_and_triggers(pem):
    result = deploy(pem, storageGb="64")
    cmds = commands(result)
    instance_id = result.outputs["instanceId"]
    assert cmds["paris-batch2-ready"].inputs["create"] == "sudo -n /opt/labstack/hooks/wait-ready.sh 600"
    assert cmds["paris-batch2-docker"].inputs["create"] == "sudo -n /opt/labstack/hooks/install-docker.sh ubuntu"
    # A bigger disk re-runs grow-fs; a replaced instance (same address and host key) re-runs every step.
    assert cmds["paris-batch2-grow-fs"].inputs["triggers"] == [64, instance_id]
    for step in ("hooks", "ready", "docker", "proxy"):
        assert cmds[f"paris-batch2-{step}"].inputs["triggers"] == [instance_id]
    conf = dict(line.split("=", 1) for line in bundle_of(result)["release.conf"].splitlines())
    assert conf["SERVER_ID"] == instance_id  # the app redeploys onto a new instance as an update
    app = cmds["paris-batch2-elif-deploy"].inputs
    assert app["create"] == "sudo -n /opt/labstack/hooks/deploy-app.sh elif"
    assert app["delete"] == "sudo -n /opt/labstack/hooks/remove-app.sh elif"
    assert "triggers" not in app  # a replacement would delete the app right after deploying it
    hooks = read_bundle(cmds["paris-batch2-hooks"].inputs["stdin"])
    assert {"deploy-app.sh", "remove-app.sh", "wait-ready.sh", "lib.sh", "proxy-up.sh"} <= set(hooks)


def test_app_bundle_is_secret_and_renders_compose(pem):
    result = deploy(pem)
    assert "stdin" in commands(result)["paris-batch2-elif-deploy"].secret_inputs
    files = bundle_of(result)
    compose = yaml.safe_load(files["app.compose.yaml"])
    web, worker = compose["services"]["web"], compose["services"]["worker"]
    assert web["image"] == IMAGE and worker["image"] == IMAGE
    assert web["environment"]["mode"] == "live"  # lower-case names keep their case
    assert web["environment"]["PRICE"] == "5$$ each"  # compose would interpolate a single $
    assert web["environment"]["DATABASE_URL"] == "postgresql://elif:${LABSTACK_DB_PASSWORD}@postgres:5432/elif"
    assert web["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert web["volumes"] == ["/srv/labstack/apps/elif/data:/data"] == worker["volumes"]
    # Only the app's own network (Caddy joins it): no other app's container reaches this web.
    assert web["networks"] == {"app": {"aliases": ["elif-${LABSTACK_COLOR}-web"]}}
    assert compose["networks"] == {"app": {"name": "labstack-elif", "external": True}}
    assert worker["scale"] == 2 and worker["command"] == ["sh", "-c", "exec python worker.py"]
    assert "ports" not in web  # only Caddy is published
    data = yaml.safe_load(files["data.compose.yaml"])["services"]
    assert data["postgres"]["environment"]["POSTGRES_DB"] == "elif"
    assert data["postgres"]["volumes"] == ["/srv/labstack/apps/elif/postgres:/var/lib/postgresql/data",
                                           "/etc/labstack/apps/elif/db-password:/run/secrets/db-password:ro"]
    assert data["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/db-password"
    assert "POSTGRES_PASSWORD" not in data["postgres"]["environment"]
    conf = dict(line.split("=", 1) for line in files["release.conf"].splitlines())
    assert (conf["IMAGE"], conf["PORT"], conf["HEALTH_PATH"], conf["HOST"]) == (
        IMAGE, "5000", "/health", "elif.experiments.test")


def test_secrets_and_dashboard_password_never_in_plain_outputs(pem):
    state = FakeAws(zones={"experiments.test": "ZMYEXP"})
    result = deploy(pem, aws=state, appSecrets={"elif": {"API_TOKEN": "s3cr3t"}}, dashboardPassword="hunter2-hunter2")
    files = bundle_of(result)
    assert "s3cr3t" not in files["app.compose.yaml"]  # secrets live in a root-only env file on the server
    assert files["secrets.env"] == 'API_TOKEN="s3cr3t"\n'
    web = yaml.safe_load(files["app.compose.yaml"])["services"]["web"]
    assert web["env_file"] == ["/etc/labstack/apps/elif/${LABSTACK_COLOR}/secrets.env"]  # the release's own
    site = files["site.caddy"]
    assert "@protected path /dashboard /dashboard/*" in site and "basicauth @protected" in site
    assert "admin $2b$12$" in site and "hunter2-hunter2" not in site
    assert "s3cr3t" not in repr(result.outputs) and "hunter2-hunter2" not in repr(result.outputs)
    # Same password and state, same hash: an unchanged stack does not redeploy.
    again = bundle_of(deploy(pem, aws=state, appSecrets={"elif": {"API_TOKEN": "s3cr3t"}},
                             dashboardPassword="hunter2-hunter2"))
    assert again["site.caddy"] == site


def test_app_hosts(pem):
    apps = {"elif": {"image": IMAGE}, "pilot": {"image": IMAGE, "host": "@"},
            "other": {"image": IMAGE, "host": "survey.other-lab.org"}}
    result = deploy(pem, apps=apps)
    hosts = {name.split("-")[2]: dict(line.split("=", 1) for line in bundle_of(result, name)["release.conf"]
                                      .splitlines())["HOST"]
             for name in commands(result) if name.endswith("-deploy")}
    assert hosts == {"elif": "elif.elif.experiments.test", "pilot": "elif.experiments.test",
                     "other": "survey.other-lab.org"}
    assert result.outputs["appUrls"]["pilot"] == "https://elif.experiments.test"


def test_without_dns_apps_get_a_nip_io_name(pem):
    result = deploy(pem, dnsHost=None)
    ip = result.outputs["publicIp"]
    assert dict(line.split("=", 1) for line in bundle_of(result)["release.conf"].splitlines())["HOST"] == f"{ip}.nip.io"


def test_proxy_tls_modes(pem):
    internal = read_bundle(commands(deploy(pem, tls="internal"))["paris-batch2-proxy"].inputs["stdin"])
    assert "local_certs" in internal["Caddyfile"].decode()
    acme = read_bundle(commands(deploy(pem, acmeEmail="lab@uni.example"))["paris-batch2-proxy"].inputs["stdin"])
    assert "email lab@uni.example" in acme["Caddyfile"].decode() and b"local_certs" not in acme["Caddyfile"]
    assert b"import /etc/caddy/sites/*.caddy" in acme["Caddyfile"]


def test_no_apps_means_a_prepared_watched_server_and_no_deploy(pem):
    # Jobs and the auto-stop watcher need Docker and the hooks on a server without apps too; Caddy, which would
    # serve nothing there, is not started.
    names = sorted(r.name for r in deploy(pem, apps={}).of_type(COMMAND))
    assert names == sorted(step for step in STEP_PREREQUISITES
                           if not step.endswith("-deploy") and not step.endswith("-proxy"))


def test_stopping_the_server_changes_no_remote_command(pem):
    # A stopped server keeps its apps in the stack: unchanged inputs run nothing, and nothing is deleted.
    aws = FakeAws(zones={"experiments.test": "ZMYEXP"})  # one "state": the same generated host key twice
    running = {r.name: r.inputs for r in deploy(pem, aws=aws).of_type(COMMAND)}
    stopped = deploy(pem, aws=aws, desiredState="stopped")
    assert {r.name: r.inputs for r in stopped.of_type(COMMAND)} == running
    assert stopped.one("aws:ec2transitgateway/instanceState:InstanceState").inputs["state"] == "stopped"


def test_bundles_are_deterministic(pem):
    assert bundle_of(deploy(pem)) == bundle_of(deploy(pem))
    first, second = deploy(pem), deploy(pem)
    assert commands(first)["paris-batch2-elif-deploy"].inputs["stdin"] == \
        commands(second)["paris-batch2-elif-deploy"].inputs["stdin"]


def test_init_post_deploy_and_clock_reach_the_server(pem):
    apps = {"elif": {"image": IMAGE, "host": "@", "initCommand": "python init_db.py && echo 'done $x'",
                     "initRun": 3, "clockCommand": "python clock.py",
                     "postDeploy": {"path": "/launch", "expectStatus": 201, "retries": 2, "when": "always"}}}
    files = bundle_of(deploy(pem, apps=apps, tls="internal"))
    assert files["init.cmd"] == "python init_db.py && echo 'done $x'"  # verbatim: a file, not a command line
    assert files["post-deploy.cmd"] == ""
    conf = dict(line.split("=", 1) for line in files["release.conf"].splitlines())
    assert (conf["INIT_RUN"], conf["POST_DEPLOY_WHEN"], conf["POST_DEPLOY_METHOD"], conf["POST_DEPLOY_PATH"],
            conf["POST_DEPLOY_STATUS"], conf["POST_DEPLOY_RETRIES"], conf["TLS_INTERNAL"]) == (
        "3", "always", "POST", "/launch", "201", "2", "true")
    services = yaml.safe_load(files["app.compose.yaml"])["services"]
    assert services["clock"]["command"] == ["sh", "-c", "exec python clock.py"] and "ports" not in services["clock"]
    assert "worker" not in services and "proxy" not in services["clock"]["networks"]


def test_secret_values_are_escaped_for_compose_env_files():
    from components.render.app_files import secrets_env
    assert secrets_env({"B": 'x"y', "A": "a$b\\c\nd\te"}) == 'A="a\\$b\\\\c\\nd\\te"\nB="x\\"y"\n'


def test_existing_server_on_another_port(pem):
    host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIApC3jxkeASzf6e7cORPKQZB3SdvvaTjJxYsb2XMRYgR"
    result = deploy(pem, **{"aws:region": None, "dnsHost": None,
                            "existingServer": {"host": "lab-server.uni.example", "port": 2222, "hostKey": host_key}})
    assert [r.type for r in result.resources if r.type.startswith(("aws:", "tls:"))] == []
    assert result.outputs["knownHosts"] == f"[lab-server.uni.example]:2222 {host_key}"
    assert result.outputs["sshCommand"] == f"ssh -i {pem} -p 2222 ubuntu@lab-server.uni.example"
    names = [r.name for r in result.of_type(COMMAND)]
    assert "paris-batch2-grow-fs" not in names  # an existing server's disks are not ours to resize
    assert {r.inputs["connection"]["port"] for r in result.of_type(COMMAND)} == {2222}
    # Without a DNS host, a server known by name serves the app under that name (nip.io is for IPs).
    conf = dict(line.split("=", 1) for line in bundle_of(result)["release.conf"].splitlines())
    assert conf["HOST"] == "lab-server.uni.example"
    export = result.one("command:local:Command").inputs["environment"]
    assert (export["LABSTACK_HOST"], export["LABSTACK_PORT"]) == ("lab-server.uni.example", "2222")
    # The existing server is the head node; what only EC2 knows is empty, and nothing points at AWS.
    assert result.outputs["nodes"] == {"paris-batch2": {
        "role": "head", "publicIp": "lab-server.uni.example", "privateIp": None, "instanceId": None,
        "availabilityZone": None, "knownHosts": f"[lab-server.uni.example]:2222 {host_key}",
        "sshCommand": f"ssh -i {pem} -p 2222 ubuntu@lab-server.uni.example"}}
    assert not {"instanceId", "region", "instanceType"} & set(result.outputs)



def test_existing_server_with_a_dns_host_names_what_answers(pem):
    """The DNS record is the user's in existing-server mode: the app's URL is the name Caddy serves (the user says
    they point it at the server), but SSH outputs name the address labstack connects to."""
    host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIApC3jxkeASzf6e7cORPKQZB3SdvvaTjJxYsb2XMRYgR"
    result = deploy(pem, **{"aws:region": None, "existingServer": {"host": "203.0.113.7", "hostKey": host_key}})
    assert result.outputs["url"] == "https://elif.experiments.test"
    assert result.outputs["knownHosts"] == f"203.0.113.7 {host_key}"
    assert result.outputs["sshCommand"] == f"ssh -i {pem} ubuntu@203.0.113.7"
    assert [r for r in result.resources if r.type.startswith("aws:route53")] == []

def test_export_on_delete_runs_before_the_app_is_removed(pem, tmp_path):
    result = deploy(pem, exportsDir=str(tmp_path / "saved"))
    export = result.one("command:local:Command")
    assert export.name == "paris-batch2-elif-export-on-delete"
    assert export.inputs["delete"] == "venv/bin/python -m labstack.data.destroy_export" and "create" not in export.inputs
    env = export.inputs["environment"]
    assert env == {
        "LABSTACK_STACK": "paris-batch2", "LABSTACK_APP": "elif", "LABSTACK_HOST": result.outputs["publicIp"],
        "LABSTACK_PORT": "22", "LABSTACK_USER": "ubuntu", "LABSTACK_KEY_FILE": str(pem),
        "LABSTACK_KNOWN_HOSTS": result.outputs["knownHosts"], "LABSTACK_POSTGRES": "true",
        "LABSTACK_EXPORTS_DIR": str(tmp_path / "saved"), "LABSTACK_DISCARD_DATA": "false"}
    names = [r.name for r in result.resources]
    # Declared after the deploy it depends on, so Pulumi deletes it first.
    assert names.index("paris-batch2-elif-export-on-delete") > names.index("paris-batch2-elif-deploy")
    assert deploy(pem, discardDataOnDestroy="true").one("command:local:Command").inputs["environment"][
        "LABSTACK_DISCARD_DATA"] == "true"


def test_log_viewer_behind_the_dashboard_password(pem):
    result = deploy(pem, dashboardPassword="hunter2-hunter2", logViewer="true")
    site = bundle_of(result)["site.caddy"]
    assert "@protected path /dashboard /dashboard/* /labstack-logs /labstack-logs/*" in site
    assert "reverse_proxy labstack-logviewer:8080" in site and "header_up X-Labstack-App elif" in site
    assert "\thandle {\n\t\treverse_proxy {{UPSTREAM}}" in site
    proxy = read_bundle(commands(result)["paris-batch2-proxy"].inputs["stdin"])
    viewer = yaml.safe_load(proxy["compose.yaml"])["services"]["logviewer"]
    # The Docker socket only through the read-only gate (tests/unit/test_render.py checks the gate).
    assert viewer["volumes"][0] == "/srv/labstack/proxy/docker-api:/run/labstack-docker" and "ports" not in viewer
    assert not any("docker.sock:" in volume for volume in viewer["volumes"])
    assert viewer["networks"]["proxy"]["aliases"] == ["labstack-logviewer"]
    without = read_bundle(commands(deploy(pem))["paris-batch2-proxy"].inputs["stdin"])
    assert "logviewer" not in yaml.safe_load(without["compose.yaml"])["services"]


def test_deploy_output_is_secret_and_not_logged(pem):
    """The deploy's stdout/stderr (init output, a failing release's logs, post-deploy bodies) stay out of Pulumi's
    log and are secret in its state: both are options the engine gets at registration, read where it gets them."""
    with registered(lambda request: list(request.additionalSecretOutputs)) as secret_outputs:
        result = deploy(pem)
    deploy_step = commands(result)["paris-batch2-elif-deploy"]
    assert deploy_step.inputs["logging"] == "none"
    assert {"stdout", "stderr"} <= set(secret_outputs["paris-batch2-elif-deploy"][-1])


def test_the_post_deploy_answer_is_shown_with_the_apps_secrets_masked(pem):
    """The deploy's output stays secret as a whole; the post-deploy line it printed becomes the `postDeploy` output
    (and a `pulumi up` message), the app's secrets and the dashboard password masked."""
    import base64

    from components.render.post_deploy import post_deploy_summary

    body = "Recruitment started: https://app.prolific.com/studies/abc?token=s3cret-token\nworkers: 3\n"
    printed = ("labstack: elif: release abc is serving\n"
               f"labstack-post-deploy 201 {base64.b64encode(body.encode()).decode()}\n")
    aws = FakeAws(zones={"experiments.test": "ZMYEXP"}, command_stdout={"paris-batch2-elif-deploy": printed})
    result = deploy(pem, aws=aws, appSecrets={"elif": {"PROLIFIC_TOKEN": "s3cret-token"}},
                    dashboardPassword="correct-horse-battery")
    assert result.outputs["postDeploy"] == {
        "elif": "HTTP 201\nRecruitment started: https://app.prolific.com/studies/abc?token=SECRET\nworkers: 3"}
    # No post-deploy request ran: nothing to show. A damaged line says so instead of failing the update.
    assert post_deploy_summary("labstack: elif: release abc is serving\n", []) is None
    assert post_deploy_summary("labstack-post-deploy 200 %%%\n", []) == \
        "HTTP 200\n(the response body could not be read back)"
    # A secret containing another is masked whole.
    assert post_deploy_summary(f"labstack-post-deploy 200 {base64.b64encode(b'key=abcdefgh-ijk').decode()}",
                               ["abcdefgh", "abcdefgh-ijk"]) == "HTTP 200\nkey=[secret]"


def test_masking_skips_short_values_and_keeps_every_links_structure():
    """Values shorter than MIN_SECRET_LENGTH are not secret-like and stay; in a link only the secret's characters
    between delimiters are masked (raw or percent-encoded), never the scheme or host, so the link parses into the
    same parts."""
    from urllib.parse import parse_qsl, urlsplit

    from components.render.post_deploy import MIN_SECRET_LENGTH, URL_MASK, mask_secrets

    link = ("https://dlgr-bartlett.my-experiments.org/ad?recruiter=prolific&hitId=abc&mode=live"
            "&assignmentId=tok/en=42xyz&workerId=user%3Apa55word")
    text = f"Recruitment open: {link}\nmode live, s3cret-token in text, pa55word too\n"
    short = ["1", "live", "abc", "https", "org", "a" * (MIN_SECRET_LENGTH - 1)]
    masked = mask_secrets(text, [*short, "s3cret-token", "tok/en=42xyz", "user:pa55word",
                                 "dlgr-bartlett.my-experiments.org", None])
    assert masked.splitlines()[1] == "mode live, [secret] in text, pa55word too"  # short values untouched
    masked_link = masked.split()[2]
    before, after = urlsplit(link), urlsplit(masked_link)
    assert (after.scheme, after.netloc, after.path) == (before.scheme, before.netloc, before.path)
    assert [name for name, _ in parse_qsl(after.query)] == [name for name, _ in parse_qsl(before.query)]
    assert dict(parse_qsl(after.query)) == {
        "recruiter": "prolific", "hitId": "abc", "mode": "live",
        "assignmentId": f"{URL_MASK}/{URL_MASK}={URL_MASK}",  # raw: delimiters stay where they were
        "workerId": URL_MASK}  # percent-encoded: masked whole
    # The host (asserted equal above) is never masked, even when a secret equals it.
    assert mask_secrets(link, short) == link


def dashboard_hash(pem, password: str, aws: FakeAws) -> str:
    site = bundle_of(deploy(pem, aws=aws, dashboardPassword=password))["site.caddy"]
    return next(line.split()[1] for line in site.splitlines() if line.startswith("\t\tadmin "))


def bcrypt_salt(hashed: str) -> str:
    assert hashed.startswith("$2b$12$") and len(hashed) == 60  # cost 12
    return hashed[7:29]


def test_the_dashboard_hash_salt_is_a_state_secret_not_a_function_of_the_password(pem):
    """Anyone with a site file, a backup or the state tests a guess at bcrypt's cost: the salt comes from a random
    key kept in the stack's state, never from the password; it stays the same across deploys (no needless
    redeploy)."""
    state = FakeAws(zones={"experiments.test": "ZMYEXP"})
    hashed = dashboard_hash(pem, "hunter2-hunter2", state)
    assert bcrypt.checkpw(b"hunter2-hunter2", hashed.encode())
    assert dashboard_hash(pem, "hunter2-hunter2", state) == hashed  # stable across deploys
    assert bcrypt_salt(dashboard_hash(pem, "correct horse battery", state)) == bcrypt_salt(hashed)  # not the password's
    other_stack = dashboard_hash(pem, "hunter2-hunter2", FakeAws(zones={"experiments.test": "ZMYEXP"}))
    assert bcrypt_salt(other_stack) != bcrypt_salt(hashed)  # the same password elsewhere: another salt
    assert bcrypt_salt(hashed) != bcrypt_salt(dashboard_password_hash("hunter2-hunter2", "elif", "0" * 64))
    result = deploy(pem, aws=state, dashboardPassword="hunter2-hunter2")
    assert "privateKeyOpenssh" in result.one("tls:index/privateKey:PrivateKey", "paris-batch2-dashboard-key").outputs


def test_every_node_guards_the_instance_metadata_before_any_container_runs_user_code(pem):
    """The metadata guard (hooks/metadata-guard.sh) runs on every node after Docker and before apps, jobs or Ray;
    `labstack:containerMetadata: true` turns it to `allow`, and the change alone runs the step again."""
    with recorded_dependencies() as dependencies:
        result = deploy(pem, cluster={"workers": 1}, dashboardPassword="hunter2-hunter2")
    cmds = commands(result)
    instance_id = result.outputs["instanceId"]
    guards = {name: cmd for name, cmd in cmds.items() if name.endswith("-metadata-guard")}
    assert sorted(guards) == ["paris-batch2-metadata-guard", "paris-batch2-worker-1-metadata-guard"]
    assert guards["paris-batch2-metadata-guard"].inputs["create"] == "sudo -n /opt/labstack/hooks/metadata-guard.sh block"
    assert guards["paris-batch2-metadata-guard"].inputs["triggers"] == ["block", instance_id]
    for node in ("paris-batch2", "paris-batch2-worker-1"):
        assert f"{node}-docker" in dependencies[f"{node}-metadata-guard"]
        assert f"{node}-metadata-guard" in dependencies[f"{node}-ray"]  # Ray, as its user, after the rules
    assert "paris-batch2-metadata-guard" in dependencies["paris-batch2-elif-deploy"]
    allowed = commands(deploy(pem, containerMetadata=True))["paris-batch2-metadata-guard"].inputs
    assert allowed["create"] == "sudo -n /opt/labstack/hooks/metadata-guard.sh allow"
    assert allowed["triggers"][0] == "allow"


def test_container_metadata_takes_only_a_boolean(pem):
    with pytest.raises(ConfigError) as caught:
        load_stack_config(base_config(pem, containerMetadata="sometimes"), stack="paris-batch2")
    assert caught.value.problems == [
        "labstack:containerMetadata = 'sometimes': expected true or false (true lets the code your containers run "
        "reach the instance metadata service)"]
