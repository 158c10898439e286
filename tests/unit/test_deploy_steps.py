"""deploy-app.sh and its steps (hooks/deploy-steps.sh) run for real in bash, without root and without Docker.

LABSTACK_ROOT points the hooks at a temp dir, and recording fakes of docker, curl and sleep
(tests/unit/fakes/fake-command.sh) come first on PATH, answering from canned rules. The tests assert on the commands
the steps ran, in order, and on the files they wrote. The bundles are the renderers' real output.
"""
from __future__ import annotations

import hashlib
import os
import re
import shlex
import stat
import subprocess
from pathlib import Path

import pytest

from components.config import load_stack_config
from components.layout import CADDY_LOCAL_ROOT_CA, POST_DEPLOY_MARK, PROXY_ETC, PROXY_SITES, STATE_FILES, name
from components.render.app_files import app_commands, app_compose, data_compose, release_conf, secrets_env
from components.render.bundle import make_bundle
from components.render.proxy import proxy_files, site_file
from tests.unit.helpers import digest, write_private_key

ROOT = Path(__file__).resolve().parents[2]
FAKE_COMMAND = Path(__file__).parent / "fakes" / "fake-command.sh"
IMAGE_V1 = "ghcr.io/lab/elif@sha256:" + digest("1a")
IMAGE_V2 = "ghcr.io/lab/elif@sha256:" + digest("2b")
HOST = "elif.example.org"
WEB_ID = "c0ffee"
CADDY_ID = "cadd1e"
ADDRESS = "169.254.200.7"  # the fake docker's answer; nothing is ever sent there (curl is fake too)
HEALTH = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", f"http://{ADDRESS}:5000/health"]
RELOAD = f"docker exec {CADDY_ID} caddy reload --config /etc/caddy/Caddyfile --adapter caddyfile"
POSTGRES_ID = "5e1ec7"
PG_READY = f"docker exec {POSTGRES_ID} pg_isready -q -h 127.0.0.1 -U elif -d elif"  # TCP: not the first-boot server
RELEASE_FILES = ("RELEASE_CONF", "APP_COMPOSE", "DATA_COMPOSE", "SITE_TEMPLATE", "INIT_CMD", "POST_DEPLOY_CMD",
                 "SECRETS_ENV")
# A release's own files, in its colour's folder (RELEASE_ETC); the others are the app's, in APP_ETC.
COLOR_FILES = ("RELEASE_CONF", "APP_COMPOSE", "SITE_TEMPLATE", "INIT_CMD", "POST_DEPLOY_CMD", "SECRETS_ENV")


@pytest.fixture(scope="module")
def pem(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("key") / "server.pem"
    write_private_key(path)
    return path


def rendered(pem: Path, image: str = IMAGE_V1, tls_internal: bool = False, **settings) -> dict[str, str]:
    """The files the App component sends to deploy-app.sh, for app `elif`."""
    raw = {"aws:region": "eu-west-3", "labstack:serverPem": str(pem), "labstack:sshCidrs": ["100.64.0.0/24"],
           "labstack:apps": {"elif": {"image": image, "workers": 1, "workerCommand": "python worker.py", **settings}}}
    config = load_stack_config(raw, "steps")
    app = config.apps[0]
    return {**app_commands(app),
            STATE_FILES["RELEASE_CONF"]: release_conf(app, HOST, tls_internal=tls_internal, server_id="i-0123"),
            STATE_FILES["APP_COMPOSE"]: app_compose(app), STATE_FILES["DATA_COMPOSE"]: data_compose(app),
            STATE_FILES["SECRETS_ENV"]: secrets_env({"API_TOKEN": "s3cr3t"}),
            STATE_FILES["SITE_TEMPLATE"]: site_file(HOST, config.proxy, None, app="elif")}


def with_conf(files: dict[str, str], **values) -> dict[str, str]:
    """The same files with release.conf values replaced (values the config validation would not allow)."""
    conf = files[STATE_FILES["RELEASE_CONF"]]
    for key, value in values.items():
        conf, count = re.subn(rf"^{key}=.*$", f"{key}={value}", conf, flags=re.M)
        assert count == 1, key
    return {**files, STATE_FILES["RELEASE_CONF"]: conf}


def release_id(files: dict[str, str]) -> str:
    return hashlib.sha256("".join(files[STATE_FILES[key]] for key in RELEASE_FILES).encode()).hexdigest()[:16]


class FakeServer:
    """A temp dir as the server's root, and fakes of docker, curl and sleep that record every call."""

    def __init__(self, tmp: Path):
        self.root, self.fakes = tmp / "root", tmp / "fakes"
        (self.fakes / "bin").mkdir(parents=True)
        for command in ("docker", "curl", "sleep"):
            (self.fakes / "bin" / command).symlink_to(FAKE_COMMAND)
        self.path(PROXY_SITES).mkdir(parents=True)  # proxy-up.sh made it
        self.etc = self.path(name("APP_ETC", "elif"))
        # A healthy server; a test puts its own answers first. Other calls succeed without output.
        self.rules: dict[str, list[tuple[str, int, str, str]]] = {"docker": [], "curl": [], "sleep": []}
        self.answer_first("curl", "*", "200")
        self.answer_first("docker", "ps -q --filter label=com.docker.compose.project=labstack-proxy *", f"{CADDY_ID}\n")
        self.answer_first("docker", "inspect -f {{.RestartCount}} *", "0\n")
        self.answer_first("docker", "inspect -f {{.State.Running}} *", "true\n")
        self.answer_first("docker", "inspect -f *Networks*", f"{ADDRESS}\n")
        self.answer_first("docker", "compose -p * ps -q web", f"{WEB_ID}\n")
        self.answer_first("docker", "compose -p * ps -aq*", f"{WEB_ID}\n")
        self.answer_first("docker", "compose -p elif-data * ps -q postgres", f"{POSTGRES_ID}\n")
        self.answer_first("docker", "network inspect *", status=1)  # no networks yet: the steps create them

    def path(self, server_path: str) -> Path:
        return Path(f"{self.root}{server_path}")

    def answer_first(self, command: str, glob: str, output: str = "", status: int = 0, uses: str = "*") -> None:
        """Answer calls of `command` whose arguments match `glob` (`uses` times, or always), before other rules."""
        self.rules[command].insert(0, (uses, status, glob, output.replace("\n", "\\n")))

    def _prepare(self) -> dict[str, str]:
        for command, rules in self.rules.items():
            (self.fakes / f"{command}.rules").write_text("".join("\t".join(map(str, r)) + "\n" for r in rules))
        for used in self.fakes.glob("*.rules.used.*"):
            used.unlink()
        (self.fakes / "calls").write_text("")
        return {**os.environ, "PATH": f"{self.fakes / 'bin'}:{os.environ['PATH']}", "FAKE_DIR": str(self.fakes),
                "LABSTACK_ROOT": str(self.root)}

    def deploy(self, files: dict[str, str]) -> subprocess.CompletedProcess:
        """The whole hook, as the App component runs it (the bundle on stdin)."""
        return subprocess.run([str(ROOT / "hooks" / "deploy-app.sh"), "elif"], input=make_bundle(files),
                              env=self._prepare(), capture_output=True, text=True, timeout=60)

    def steps(self, files: dict[str, str], *steps: str) -> subprocess.CompletedProcess:
        """Some steps of deploy-app.sh, after load_release (the bundle unpacked in a temp dir)."""
        bundle = self.root.parent / "bundle"
        bundle.mkdir(exist_ok=True)
        for file_name, text in files.items():
            (bundle / file_name).write_text(text)
        script = 'set -euo pipefail; source hooks/deploy-steps.sh; load_release elif "$1"; ' + "; ".join(steps)
        return subprocess.run(["bash", "-c", script, "steps", str(bundle)], cwd=ROOT, env=self._prepare(),
                              capture_output=True, text=True, timeout=60)

    def hook(self, hook: str, *args: str) -> subprocess.CompletedProcess:
        """Another hook, as an operator (or labstack/) runs it."""
        return subprocess.run([str(ROOT / "hooks" / hook), *args], env=self._prepare(), capture_output=True,
                              text=True, timeout=60)

    def proxy_up(self, files: dict[str, str]) -> subprocess.CompletedProcess:
        """proxy-up.sh, as the host setup runs it (the proxy bundle on stdin)."""
        return subprocess.run([str(ROOT / "hooks" / "proxy-up.sh")], input=make_bundle(files),
                              env=self._prepare(), capture_output=True, text=True, timeout=60)

    def calls(self) -> list[list[str]]:
        return [shlex.split(line) for line in (self.fakes / "calls").read_text().splitlines()]

    def trace(self) -> list[str]:
        """The calls that change something, in order: docker and compose queries (inspect, ps, version) left out;
        compose calls as `compose <project>: <arguments>` (the file options are the layout's, tested elsewhere)."""
        steps = []
        for argv in self.calls():
            if argv[:2] == ["docker", "compose"]:
                options = dict(zip(argv[2:], argv[3:]))
                rest = argv[2:]
                while rest and rest[0] in ("-p", "-f", "--env-file"):
                    rest = rest[2:]
                if rest[:1] not in (["version"], ["ps"], ["config"]):
                    steps.append(f"compose {options['-p']}: {' '.join(rest)}")
            elif argv[:2] not in (["docker", "inspect"], ["docker", "ps"], ["docker", "image"]):
                steps.append(" ".join(argv))
        return steps

    def read(self, state_file: str, color: str = "") -> str:
        """One of the app's files, or (color) one of that release's files."""
        return ((self.release_dir(color) if color else self.etc) / STATE_FILES[state_file]).read_text()

    def release_dir(self, color: str) -> Path:
        return self.path(name("RELEASE_ETC", "elif", color))

    def state(self) -> dict[str, str]:
        """The app's state file as a dict; {} when there is none."""
        path = self.etc / STATE_FILES["APP_STATE"]
        return dict(line.split("=", 1) for line in path.read_text().splitlines()) if path.exists() else {}

    def serving(self, files: dict[str, str], color: str = "blue", port: int = 8000, image: str = IMAGE_V1) -> None:
        """The server as a finished deploy of `files` as `color` leaves it: state, release folder, site."""
        folder = self.release_dir(color)
        folder.mkdir(parents=True)
        for key in COLOR_FILES:
            (folder / STATE_FILES[key]).write_text(files[STATE_FILES[key]])
        (self.etc / STATE_FILES["APP_STATE"]).write_text(
            f"COLOR={color}\nRELEASE={release_id(files)}\nIMAGE={image}\nWORKERS=1\nSWITCHED_AT=2026-11-28T10:00:00Z\n")
        self.path(name("APP_SITE", "elif")).write_text(f"elif.example.org {{\n\treverse_proxy elif-{color}-web:{port}\n}}\n")
        (self.etc / STATE_FILES["RELEASES_LOG"]).write_text(f"2026-11-28T10:00:00Z {release_id(files)} {image}\n")

    def site(self) -> str:
        return self.path(name("APP_SITE", "elif")).read_text()


@pytest.fixture
def server(tmp_path) -> FakeServer:
    return FakeServer(tmp_path)


def test_first_deploy_waits_for_2xx_then_switches_the_proxy(server, pem):
    files = rendered(pem, initCommand="python init_db.py")
    server.answer_first("docker", f"exec {POSTGRES_ID} pg_isready *", status=2, uses="1")
    server.answer_first("curl", "*", "503", uses="1")
    server.answer_first("curl", "*", "000", status=7, uses="1")  # connection refused: not up yet
    result = server.deploy(files)
    assert result.returncode == 0, result.stderr
    assert server.trace() == [
        "docker network inspect labstack-elif", "docker network create labstack-elif",
        "compose elif-data: up -d --remove-orphans",
        PG_READY, "sleep 0.2", PG_READY,
        "compose elif-init: --profile init run --rm -T --no-deps init sh -c python init_db.py",
        # Created without a restart policy, so only a switched-in release comes back after a reboot; a first
        # release's workers start with its web (nothing serves beside it).
        "compose elif-blue: up --no-start --force-recreate --remove-orphans",
        f"docker update --restart no {WEB_ID}", f"docker start {WEB_ID}",
        " ".join(HEALTH), "sleep 0.2", " ".join(HEALTH), "sleep 0.2", " ".join(HEALTH),
        RELOAD,
        "compose elif-blue: up -d --remove-orphans",
    ]
    assert server.site() == files["site.caddy"].replace("{{UPSTREAM}}", "elif-blue-web:5000")
    assert "reverse_proxy elif-blue-web:5000" in server.site()
    state = server.state()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", state.pop("SWITCHED_AT"))
    assert state == {"COLOR": "blue", "RELEASE": release_id(files), "IMAGE": IMAGE_V1, "WORKERS": "1"}
    assert stat.S_IMODE((server.etc / STATE_FILES["APP_STATE"]).stat().st_mode) == 0o600
    assert not (server.etc / (STATE_FILES["APP_STATE"] + ".new")).exists()
    assert server.read("RELEASES_LOG").split()[1:] == [release_id(files), IMAGE_V1]
    assert server.read("INIT_DONE") == "1\n"
    for key in COLOR_FILES:  # the release's files, root-only (secrets.env holds the app's secrets)
        assert server.read(key, "blue") == files[STATE_FILES[key]]
        assert stat.S_IMODE((server.release_dir("blue") / STATE_FILES[key]).stat().st_mode) == 0o600
        assert not (server.etc / STATE_FILES[key]).exists()
    for key in ("DATA_COMPOSE", "EXPORT_CMD"):  # Postgres and Redis serve both colours; the export, the serving one
        assert server.read(key) == files[STATE_FILES[key]]
        assert stat.S_IMODE((server.etc / STATE_FILES[key]).stat().st_mode) == 0o600
    assert stat.S_IMODE(server.etc.stat().st_mode) == 0o700
    assert stat.S_IMODE(server.release_dir("blue").stat().st_mode) == 0o700
    assert not server.release_dir("green").exists()
    assert re.fullmatch(r"LABSTACK_DB_PASSWORD=[0-9a-f]{48}\n", server.read("DB_ENV"))
    # Postgres's POSTGRES_PASSWORD_FILE: the same password alone, readable by the container's postgres user.
    assert server.read("DB_PASSWORD") == server.read("DB_ENV").split("=", 1)[1]
    assert stat.S_IMODE((server.etc / STATE_FILES["DB_PASSWORD"]).stat().st_mode) == 0o644
    # The site may hold the dashboard password hash: not world-readable (Caddy reads it as root).
    assert stat.S_IMODE(server.path(name("APP_SITE", "elif")).stat().st_mode) == 0o640
    for directory in ("APP_DATA", "APP_POSTGRES", "APP_REDIS"):
        assert server.path(name(directory, "elif")).is_dir()


def test_unchanged_release_starts_no_new_containers(server, pem):
    files = rendered(pem)
    assert server.deploy(files).returncode == 0
    password = server.read("DB_ENV")
    again = server.deploy(files)
    assert again.returncode == 0, again.stderr
    assert "release " + release_id(files) + " is already serving (blue)" in again.stderr
    assert server.trace() == [
        "docker network inspect labstack-elif", "docker network create labstack-elif",
        "compose elif-data: up -d --remove-orphans", PG_READY,
        "compose elif-blue: up -d",  # brings back a stopped service, recreates nothing
    ]
    assert server.read("RELEASES_LOG").count("\n") == 1
    assert server.read("DB_ENV") == password  # made once, never replaced


@pytest.mark.parametrize("failure", ["crash loop", "timeout"])
def test_unhealthy_release_is_removed_and_the_old_one_keeps_serving(server, pem, failure):
    v1 = rendered(pem)
    assert server.deploy(v1).returncode == 0
    site = server.site()
    server.answer_first("curl", "*", "503")
    server.answer_first("docker", "compose -p elif-green * logs --no-color --tail 60", "Traceback: boom\n")
    if failure == "crash loop":
        server.answer_first("docker", "inspect -f {{.State.Running}} *", "false\n")
        v2 = rendered(pem, image=IMAGE_V2)
    else:
        v2 = with_conf(rendered(pem, image=IMAGE_V2), HEALTH_TIMEOUT=1)
    result = server.deploy(v2)
    assert result.returncode != 0
    assert "Traceback: boom" in result.stderr  # the new release's logs
    assert "kept the previous release serving (blue)" in result.stderr
    trace = server.trace()
    start = trace.index(f"docker start {WEB_ID}")
    if failure == "crash loop":  # started again twice, as a restart policy would, then no point waiting longer
        checks = [" ".join(HEALTH), f"docker start {WEB_ID}", "sleep 0.2"] * 2 + [" ".join(HEALTH)]
    else:
        checks = [" ".join(HEALTH), "sleep 0.2"] * trace.count(" ".join(HEALTH))
        assert checks
    assert trace[start + 1:] == checks + ["compose elif-green: logs --no-color --tail 60",
                                          "compose elif-green: down --remove-orphans"]
    assert server.site() == site and "elif-blue-web:5000" in site  # no switch, no reload, blue untouched
    assert (server.state()["COLOR"], server.state()["RELEASE"]) == ("blue", release_id(v1))
    assert not server.release_dir("green").exists()  # the candidate's files went with it


def test_unhealthy_first_release_leaves_nothing_serving(server, pem):
    server.answer_first("curl", "*", "502")
    server.answer_first("docker", "inspect -f {{.State.Running}} *", "false\n")
    result = server.deploy(rendered(pem))
    assert result.returncode != 0 and "the first release is unhealthy; nothing is serving" in result.stderr
    assert server.trace()[-1] == "compose elif-blue: down --remove-orphans"
    assert not server.path(name("APP_SITE", "elif")).exists()
    assert server.state() == {} and not server.release_dir("blue").exists()


def test_switch_retire_workers_and_record_move_to_the_other_colour(server, pem):
    files = rendered(pem, port=8000)
    server.serving(rendered(pem, port=8000, image=IMAGE_V2))
    result = server.steps(files, "install_release_files", "switch_proxy", "retire_old", "start_workers",
                          "record_release")
    assert result.returncode == 0, result.stderr
    assert "reverse_proxy elif-green-web:8000" in server.site()
    assert server.trace() == [RELOAD, "compose elif-blue: down --remove-orphans",
                              "compose elif-green: up -d --remove-orphans"]
    assert server.state()["COLOR"] == "green" and server.state()["RELEASE"] == release_id(files)
    assert not server.release_dir("blue").exists()  # the retired release's files went with it


CADDY_REFUSAL = "Error: adapting config using caddyfile: ambiguous site definition: elif.example.org\n"


def test_a_site_caddy_refuses_is_replaced_by_the_previous_one(server, pem):
    files = rendered(pem, port=8000)
    server.serving(rendered(pem, port=8000, image=IMAGE_V2))
    state = server.state()
    server.answer_first("docker", f"exec {CADDY_ID} caddy reload *", CADDY_REFUSAL, status=1, uses="1")
    result = server.steps(files, "install_release_files", "switch_proxy", "retire_old")
    assert result.returncode != 0
    assert "ambiguous site definition: elif.example.org" in result.stderr  # Caddy's own message
    assert "the previous site is back and release blue keeps serving" in result.stderr
    # The new site was tried, refused, the previous one reloaded, and the new release removed.
    assert server.trace() == [RELOAD, RELOAD, "compose elif-green: down --remove-orphans"]
    # What a later Caddy restart reads: the configuration Caddy accepted, the serving release's site.
    assert server.site() == files["site.caddy"].replace("{{UPSTREAM}}", "elif-blue-web:8000")
    assert sorted(p.name for p in server.path(PROXY_SITES).iterdir()) == ["elif.caddy"]
    assert server.state() == state and not server.release_dir("green").exists()


def test_caddy_joins_the_app_network_once(server, pem):
    """Apps share no network: Caddy joins each app's own network to reach its web, and only when not on it yet."""
    server.answer_first("docker", f"inspect -f *NetworkID* {CADDY_ID}", "\n")
    assert server.steps(rendered(pem), "ensure_networks").returncode == 0
    assert server.trace() == ["docker network inspect labstack-elif", "docker network create labstack-elif",
                              f"docker network connect labstack-elif {CADDY_ID}"]
    server.rules["docker"].pop(0)  # now it is on it
    assert server.steps(rendered(pem), "ensure_networks").returncode == 0
    assert "connect" not in " ".join(server.trace())


def test_a_first_site_caddy_refuses_is_removed(server, pem):
    server.answer_first("docker", f"exec {CADDY_ID} caddy reload *", CADDY_REFUSAL, status=1, uses="1")
    result = server.steps(rendered(pem), "install_release_files", "switch_proxy")
    assert result.returncode != 0
    assert "Caddy refused the new site (above); it was removed, every other app keeps serving" in result.stderr
    assert server.trace() == [RELOAD, RELOAD, "compose elif-blue: down --remove-orphans"]
    assert list(server.path(PROXY_SITES).iterdir()) == []


def test_proxy_up_puts_back_the_files_caddy_refused(server, pem):
    raw = {"aws:region": "eu-west-3", "labstack:serverPem": str(pem), "labstack:sshCidrs": ["100.64.0.0/24"],
           "labstack:apps": {"elif": {"image": IMAGE_V1}}}
    accepted = proxy_files(load_stack_config(raw, "steps").proxy)
    for file_name, text in accepted.items():
        server.path(f"{PROXY_ETC}/{file_name}").write_text(text)
    refused = {**accepted, "Caddyfile": accepted["Caddyfile"] + "import /etc/caddy/broken\n"}
    server.answer_first("docker", f"exec {CADDY_ID} caddy reload *", "Error: File to import not found\n",
                        status=1, uses="1")
    result = server.proxy_up(refused)
    assert result.returncode != 0
    assert "File to import not found" in result.stderr and "the previous one is back" in result.stderr
    assert server.path(f"{PROXY_ETC}/Caddyfile").read_text() == accepted["Caddyfile"]
    assert server.trace().count(RELOAD) == 2  # the refused files, then the previous ones
    server.rules["docker"].pop(0)  # now Caddy accepts them: they stay
    assert server.proxy_up(refused).returncode == 0
    assert server.path(f"{PROXY_ETC}/Caddyfile").read_text() == refused["Caddyfile"]


def test_init_runs_once_and_again_only_when_init_run_rises(server, pem):
    files = rendered(pem, initCommand="python init_db.py && echo 'done $x'")
    init = "compose elif-init: --profile init run --rm -T --no-deps init sh -c python init_db.py && echo 'done $x'"
    runs = []
    for init_run in (1, 1, 2, 2):
        result = server.steps(with_conf(files, INIT_RUN=init_run), "install_release_files", "run_init")
        assert result.returncode == 0, result.stderr
        runs.append(server.trace().count(init))
    assert runs == [1, 0, 1, 0]
    assert server.read("INIT_DONE") == "2\n"


def test_failed_init_changes_nothing_and_shows_its_output(server, pem):
    server.answer_first("docker", "compose -p elif-init *", "relation exists\n", status=1)
    result = server.steps(rendered(pem, initCommand="python init_db.py"), "install_release_files", "run_init")
    assert result.returncode != 0
    assert "relation exists" in result.stderr and "the init command failed; nothing was changed" in result.stderr
    assert not (server.etc / STATE_FILES["INIT_DONE"]).exists()


def test_image_pulled_only_when_missing(server, pem):
    files = rendered(pem)
    assert server.steps(files, "pull_image").returncode == 0
    assert server.trace() == []
    server.answer_first("docker", "image inspect *", status=1)
    assert server.steps(files, "pull_image").returncode == 0
    assert server.trace() == [f"docker pull -q {IMAGE_V1}"]
    server.answer_first("docker", "pull *", status=1)
    result = server.steps(files, "pull_image")
    assert result.returncode != 0 and f"cannot pull {IMAGE_V1}" in result.stderr


LAUNCH = {"path": "/launch", "method": "POST", "expectStatus": 201, "retries": 3}


def post_deploy_curls(server: FakeServer) -> list[list[str]]:
    return [argv for argv in server.calls() if argv[0] == "curl"]


def test_post_deploy_request_retries_through_the_public_name(server, pem):
    files = rendered(pem, tls_internal=True, postDeploy={**LAUNCH, "when": "first"})
    server.answer_first("curl", "*", "201")
    server.answer_first("curl", "*", "502", uses="2")
    result = server.steps(files, "install_release_files", "post_deploy blue")
    assert result.returncode == 0, result.stderr
    curls = post_deploy_curls(server)
    assert len(curls) == 3 and all(argv == curls[0] for argv in curls)
    body = curls[0][3]
    assert curls[0] == ["curl", "-sS", "-o", body, "-w", "%{http_code}", "--max-time", "30",
                        "--cacert", str(server.path(CADDY_LOCAL_ROOT_CA)), "-X", "POST",
                        "--resolve", f"{HOST}:443:127.0.0.1", f"https://{HOST}/launch"]
    assert [argv for argv in server.calls() if argv[0] == "sleep"] == [["sleep", "1"], ["sleep", "2"]]
    assert "post-deploy POST /launch answered 201" in result.stderr
    assert (server.etc / STATE_FILES["POST_DEPLOY_DONE"]).exists()
    answer = [line for line in result.stdout.splitlines() if line.startswith(POST_DEPLOY_MARK + " ")]
    assert len(answer) == 1 and answer[0].split()[1] == "201"
    # `first`: done once, never again; `always`: after every deploy. A deploy that sends no request prints the
    # last answer again, so the `postDeploy` output keeps it.
    again = server.steps(files, "install_release_files", "post_deploy blue")
    assert again.returncode == 0
    assert post_deploy_curls(server) == []
    assert again.stdout.splitlines() == answer
    always = rendered(pem, postDeploy={**LAUNCH, "when": "always"})
    server.answer_first("curl", "*", "201")
    assert server.steps(always, "install_release_files", "post_deploy blue").returncode == 0
    assert len(post_deploy_curls(server)) == 1 and "--cacert" not in post_deploy_curls(server)[0]



def test_a_new_init_run_launches_once_more(server, pem):
    """Raising initRun is a new batch: the `first` post-deploy (Dallinger's /launch) runs once for it, not again."""
    files = rendered(pem, initRun=1, postDeploy={**LAUNCH, "when": "first"})
    done = server.etc / STATE_FILES["POST_DEPLOY_DONE"]
    done.parent.mkdir(parents=True, exist_ok=True)
    done.write_text("2026-01-05T10:00:00Z\n")  # written before init runs were recorded: run 1 is launched
    launches, recorded = [], []
    for init_run in (1, 2, 2, 3):
        server.answer_first("curl", "*", "201")
        result = server.steps(with_conf(files, INIT_RUN=init_run), "install_release_files", "post_deploy blue")
        assert result.returncode == 0, result.stderr
        launches.append(len(post_deploy_curls(server)))
        recorded.append(done.read_text().split()[0])
    assert launches == [0, 1, 0, 1]
    assert recorded == ["2026-01-05T10:00:00Z", "2", "2", "3"]

def test_failed_post_deploy_request_fails_with_the_response(server, pem):
    server.answer_first("curl", "*", "500")
    result = server.steps(rendered(pem, postDeploy={**LAUNCH, "retries": 2}), "install_release_files",
                          "post_deploy green")
    assert result.returncode != 0
    assert len(post_deploy_curls(server)) == 3
    assert "answered 500, expected 201" in result.stderr and "the post-deploy request failed" in result.stderr
    assert not (server.etc / STATE_FILES["POST_DEPLOY_DONE"]).exists()


def test_post_deploy_command_runs_in_the_serving_web_container(server, pem):
    files = rendered(pem, postDeploy={"command": "flask launch --yes"})
    result = server.steps(files, "install_release_files", "post_deploy blue")
    assert result.returncode == 0, result.stderr
    assert server.trace() == ["compose elif-blue: exec -T web sh -c flask launch --yes"]


def step_times(stderr: str) -> dict[str, float]:
    (line,) = [line for line in stderr.splitlines() if line.startswith("labstack: elif: step times (s): ")]
    return {key: float(value) for key, value in (item.split("=") for item in line.split(": ")[-1].split())}


def test_every_deploy_ends_with_each_steps_time(server, pem):
    files = rendered(pem)
    first = server.deploy(files)
    assert first.returncode == 0, first.stderr
    times = step_times(first.stderr)
    assert sorted(times) == sorted(["repair", "files", "networks", "pull", "data", "postgres", "init", "web",
                                    "healthy", "switch", "workers", "settle", "retire"])
    assert all(0 <= seconds < 30 for seconds in times.values())
    again = server.deploy(files)
    assert sorted(step_times(again.stderr)) == ["data", "files", "keep", "networks", "postgres", "pull", "repair"]


def test_a_failed_pull_fails_the_deploy_before_any_release_starts(server, pem):
    # The pull runs beside the data services' start; its failure still stops the deploy before the web starts.
    server.answer_first("docker", "image inspect *", status=1)
    server.answer_first("docker", "pull *", status=1)
    result = server.deploy(rendered(pem))
    assert result.returncode != 0 and f"cannot pull {IMAGE_V1}" in result.stderr
    # Nothing of the release started; its files, beside, are gone with the failure.
    assert [step for step in server.trace() if step.startswith("compose elif-blue")] == \
        ["compose elif-blue: down --remove-orphans"]
    assert server.state() == {} and not server.release_dir("blue").exists()


def test_postgres_never_ready_fails_after_polling(server, pem):
    server.answer_first("docker", f"exec {POSTGRES_ID} pg_isready *", status=2)
    result = server.steps(rendered(pem), "install_release_files", "POSTGRES_TIMEOUT=1", "wait_for_postgres")
    assert result.returncode != 0 and "Postgres of elif did not become ready in 1s" in result.stderr
    polls = [step for step in server.trace() if step in (PG_READY, "sleep 0.2")]
    # How many polls fit in the second depends on the machine's load; each is a readiness check, then a short sleep.
    assert polls and polls[0] == PG_READY and all(a != b for a, b in zip(polls, polls[1:]))


# --- one state file, repair first, the candidate beside ----------------------------------------------

GREEN_IDS = "9e1\n9e2\n"  # a green release's web and worker (the fake engine's answer to a label query)
GREEN_QUERY = "ps -aq --filter label=org.labstack.app=elif --filter label=org.labstack.color=green"


def repairs(stderr: str) -> list[str]:
    return [line.split("repaired: ", 1)[1] for line in stderr.splitlines() if "elif: repaired: " in line]


def test_an_interrupted_switch_is_repaired_to_what_the_state_names(server, pem):
    """Killed between the site's switch to green and the rename of state.new: Caddy may serve green, the state
    names blue. The next run points the site at blue again, then removes green (containers and files)."""
    v1, v2 = rendered(pem, port=8000), rendered(pem, port=8000, image=IMAGE_V2)
    server.serving(v1)
    state = server.state()
    green = server.release_dir("green")
    green.mkdir()
    for key in COLOR_FILES:
        (green / STATE_FILES[key]).write_text(v2[STATE_FILES[key]])
    (server.etc / (STATE_FILES["APP_STATE"] + ".new")).write_text("COLOR=green\n")
    server.path(name("APP_SITE", "elif")).write_text("elif.example.org {\n\treverse_proxy elif-green-web:8000\n}\n")
    server.answer_first("docker", GREEN_QUERY, GREEN_IDS, uses="1")
    result = server.hook("app-reconcile.sh", "elif")
    assert result.returncode == 0, result.stderr
    assert repairs(result.stderr) == [
        "a switch did not finish; Caddy points at release blue again, as the state says",
        "removed release green (running, but not the release the state names)"]
    assert server.trace() == [RELOAD, "compose elif-green: down --remove-orphans"]
    assert server.site() == v1["site.caddy"].replace("{{UPSTREAM}}", "elif-blue-web:8000")
    assert server.state() == state and not green.exists()
    assert not (server.etc / (STATE_FILES["APP_STATE"] + ".new")).exists()
    assert result.stdout == "".join(f"{key}={value}\n" for key, value in state.items())  # what serves, printed
    server.rules["docker"].pop(0)  # green is gone
    again = server.hook("app-reconcile.sh", "elif")  # consistent now: nothing to do
    assert again.returncode == 0 and repairs(again.stderr) == [] and server.trace() == []


def test_repairs_a_stopped_serving_release_and_files_that_never_started(server, pem):
    server.serving(rendered(pem, port=8000))
    server.release_dir("green").mkdir()  # a candidate's files, from a deploy killed before its web started
    (server.release_dir("green") / "release.conf").write_text("IMAGE=x\n")
    # Blue's worker was never started (a deploy killed after its switch) or its web is stopped (a paused export
    # that died): compose lists fewer running services than the release has.
    server.answer_first("docker", "compose -p elif-blue * config --services", "web\nworker\n")
    server.answer_first("docker", "compose -p elif-blue * ps --services --status running", "web\nworker\n")
    server.answer_first("docker", "compose -p elif-blue * ps --services --status running", "web\n", uses="2")  # then both
    result = server.hook("pause-app.sh", "elif", "start")
    assert result.returncode == 0, result.stderr
    assert repairs(result.stderr) == ["started the services of release blue that were not running",
                                      "deleted the files of release green, which never served"]
    # Started without recreating what runs; no reload: the site already names blue.
    assert server.trace() == ["compose elif-blue: up -d --no-recreate --remove-orphans", "compose elif-blue: start"]
    assert not server.release_dir("green").exists()


def test_pause_refuses_to_guess_without_a_state(server, pem):
    server.etc.mkdir(parents=True)
    result = server.hook("pause-app.sh", "elif", "stop")
    assert result.returncode != 0
    assert "elif has no serving release on this server (no state.conf); refusing to guess which to stop" in result.stderr
    assert server.trace() == []


def test_a_first_release_that_never_finished_its_switch_loses_its_site(server, pem):
    files = rendered(pem)
    server.etc.mkdir(parents=True)
    (server.etc / (STATE_FILES["APP_STATE"] + ".new")).write_text("COLOR=blue\n")
    server.path(name("APP_SITE", "elif")).write_text("elif.example.org {\n\treverse_proxy elif-blue-web:5000\n}\n")
    server.answer_first("docker", GREEN_QUERY.replace("green", "blue"), "b1\n", uses="2")  # seen, then removed
    result = server.deploy(files)
    assert result.returncode == 0, result.stderr
    assert repairs(result.stderr) == ["removed the site of a first release that never finished its switch",
                                      "removed release blue (running, but not the release the state names)"]
    assert server.trace()[:3] == [RELOAD, "docker stop b1", "docker rm b1"]  # its files were gone: by label
    assert server.state()["COLOR"] == "blue"  # then deployed afresh


def legacy_server(server: FakeServer, files: dict[str, str]) -> None:
    """A server as labstack deployed it before the state file: every file in APP_ETC, active-color and -release."""
    server.etc.mkdir(parents=True)
    for key in RELEASE_FILES:
        (server.etc / STATE_FILES[key]).write_text(files[STATE_FILES[key]])
    (server.etc / STATE_FILES["ACTIVE_COLOR"]).write_text("green\n")
    (server.etc / STATE_FILES["ACTIVE_RELEASE"]).write_text(release_id(files) + "\n")
    (server.etc / STATE_FILES["RELEASES_LOG"]).write_text(f"2026-11-01T09:00:00Z {release_id(files)} {IMAGE_V1}\n")
    server.path(name("APP_SITE", "elif")).write_text(files["site.caddy"].replace("{{UPSTREAM}}", "elif-green-web:5000"))


def test_a_server_deployed_before_the_state_file_is_read_then_converted(server, pem):
    files = rendered(pem)
    legacy_server(server, files)
    expected = f"COLOR=green\nRELEASE={release_id(files)}\nIMAGE={IMAGE_V1}\nWORKERS=1\nSWITCHED_AT=2026-11-01T09:00:00Z\n"
    printed = server.hook("app-state.sh", "elif")
    assert printed.returncode == 0 and printed.stdout == expected
    assert not (server.etc / STATE_FILES["APP_STATE"]).exists()  # reading changes nothing
    # The same release deployed again by the new hooks: converted, recognised as serving, nothing recreated.
    again = server.deploy(files)
    assert again.returncode == 0, again.stderr
    assert f"converted the records of an earlier labstack into state.conf (green, release {release_id(files)})" \
        in again.stderr
    assert f"release {release_id(files)} is already serving (green)" in again.stderr
    assert "compose elif-green: up -d" in server.trace() and "--force-recreate" not in " ".join(server.trace())
    assert server.state() == dict(line.split("=", 1) for line in expected.splitlines())
    for key in COLOR_FILES:
        assert server.read(key, "green") == files[STATE_FILES[key]]
    # Only secrets.env stays in APP_ETC, where the converted release's compose file names it.
    assert sorted(p.name for p in server.etc.iterdir() if p.is_file()) == sorted(
        STATE_FILES[key] for key in ("DATA_COMPOSE", "SECRETS_ENV", "DB_ENV", "DB_PASSWORD", "EXPORT_CMD",
                                     "RELEASES_LOG", "APP_STATE"))
    # The next release retires it, and with it the last file of the old layout.
    update = server.deploy(rendered(pem, image=IMAGE_V2))
    assert update.returncode == 0, update.stderr
    assert server.state()["COLOR"] == "blue" and not server.release_dir("green").exists()
    assert not (server.etc / STATE_FILES["SECRETS_ENV"]).exists()


def test_a_failed_pull_leaves_the_server_describing_what_serves(server, pem):
    v1 = rendered(pem, exportCommand="dallinger export")
    assert server.deploy(v1).returncode == 0
    before = {path.relative_to(server.root): path.read_bytes() for path in server.root.rglob("*") if path.is_file()}
    server.answer_first("docker", "image inspect *", status=1)
    server.answer_first("docker", "pull *", status=1)
    result = server.deploy(rendered(pem, image=IMAGE_V2, exportCommand="flask export"))
    assert result.returncode != 0 and f"cannot pull {IMAGE_V2}" in result.stderr
    after = {path.relative_to(server.root): path.read_bytes() for path in server.root.rglob("*") if path.is_file()}
    assert after == before  # state, release folder, site and export command: the serving release's, unchanged


def test_a_deploy_killed_after_its_switch_is_completed_by_the_next_run(server, pem):
    """The state names green (the switch was recorded), but green's worker never started, blue was never retired
    and releases.log has no line for green: the repair starts green's worker, removes blue and logs the release."""
    v1, v2 = rendered(pem, port=8000), rendered(pem, port=8000, image=IMAGE_V2)
    server.serving(v1)
    server.serving(v2, color="green", image=IMAGE_V2)  # the state and site name green, blue's folder is still there
    (server.etc / STATE_FILES["RELEASES_LOG"]).write_text(f"2026-11-28T10:00:00Z {release_id(v1)} {IMAGE_V1}\n")
    server.answer_first("docker", "compose -p elif-green * config --services", "web\nworker\n")
    server.answer_first("docker", "compose -p elif-green * ps --services --status running", "web\nworker\n")
    server.answer_first("docker", "compose -p elif-green * ps --services --status running", "web\n", uses="2")  # then both
    server.answer_first("docker", GREEN_QUERY.replace("green", "blue"), "b1\nb2\n", uses="1")
    result = server.hook("app-reconcile.sh", "elif")
    assert result.returncode == 0, result.stderr
    assert repairs(result.stderr) == [
        "started the services of release green that were not running",
        "removed release blue (running, but not the release the state names)",
        f"release {release_id(v2)} ({IMAGE_V2}) added to releases.log"]
    assert server.trace() == ["compose elif-green: up -d --no-recreate --remove-orphans",
                              "compose elif-blue: down --remove-orphans"]
    assert not server.release_dir("blue").exists() and server.state()["COLOR"] == "green"
    assert server.read("RELEASES_LOG").splitlines()[-1] == f"2026-11-28T10:00:00Z {release_id(v2)} {IMAGE_V2}"


@pytest.mark.parametrize("hook", [("pause-app.sh", "elif", "stop"), ("remove-app.sh", "elif")], ids=["pause", "remove"])
def test_stopping_or_removing_never_starts_the_serving_release_first(server, pem, hook):
    """After the export before a removal, the app stays stopped: nothing may write between the export and it."""
    server.serving(rendered(pem, port=8000))
    server.answer_first("docker", "compose -p elif-blue * config --services", "web\nworker\n")
    result = server.hook(*hook)
    assert result.returncode == 0, result.stderr
    assert repairs(result.stderr) == []
    assert not [step for step in server.trace() if " up " in f"{step} "]


def test_a_service_that_does_not_stay_running_is_not_claimed_as_repaired(server, pem):
    server.serving(rendered(pem, port=8000))
    server.answer_first("docker", "compose -p elif-blue * config --services", "web\nworker\n")
    server.answer_first("docker", "compose -p elif-blue * ps --services --status running", "web\n")  # crash-looping
    result = server.hook("app-reconcile.sh", "elif")
    assert result.returncode == 0, result.stderr
    assert repairs(result.stderr) == []
    assert "release blue has services that do not stay running" in result.stderr
    assert server.trace() == ["compose elif-blue: up -d --no-recreate --remove-orphans"]


def test_one_run_at_a_time_per_app(server, pem):
    """While a deploy holds the app's lock, a pause (whose repair would take the candidate for a leftover) waits,
    and gives up with a message; another app is not held up."""
    import fcntl

    lock = server.path(name("APP_ETC", "elif")).parent / ".elif.lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        waited = server.steps(rendered(pem), "LOCK_SECONDS=1", "lock_app elif")
        other = server.steps(rendered(pem), "LOCK_SECONDS=1", "lock_app pilot")
    assert waited.returncode != 0
    assert f"elif: another labstack run (deploy, pause, export or removal) has held {lock} for 1s" in waited.stderr
    assert other.returncode == 0, other.stderr
    assert server.steps(rendered(pem), "LOCK_SECONDS=1", "lock_app elif").returncode == 0  # released


def test_purge_removes_leftovers_first_and_still_refuses_a_serving_app(server, pem):
    server.etc.mkdir(parents=True)  # a removed app: no state, its data kept
    server.path(name("APP_DATA", "elif")).mkdir(parents=True)
    server.answer_first("docker", GREEN_QUERY, "9e1\n", uses="2")  # a candidate a dead deploy left, seen then removed
    purged = server.hook("purge-app.sh", "elif", "--delete-data")
    assert purged.returncode == 0, purged.stderr
    assert repairs(purged.stderr) == ["removed release green (running, but not the release the state names)"]
    assert server.trace() == ["docker stop 9e1", "docker rm 9e1"]
    assert not server.etc.exists() and not server.path(name("APP_SRV", "elif")).exists()
    server.serving(rendered(pem, port=8000))  # deployed and serving: refused, nothing started or deleted
    server.answer_first("docker", "ps -q --filter label=com.docker.compose.project=elif-blue", "b1\n")
    refused = server.hook("purge-app.sh", "elif", "--delete-data")
    assert refused.returncode != 0 and "elif is still running (elif-blue)" in refused.stderr
    assert server.state()["COLOR"] == "blue" and not [step for step in server.trace() if " up " in f"{step} "]
