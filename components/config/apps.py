"""One app of the stack file (`labstack:apps.<name>`): its settings, and the post-deploy hook they may carry."""
from __future__ import annotations

import re
import shlex
from typing import Annotated, Any, ClassVar, Literal, Mapping, Optional, Union

from pydantic import BeforeValidator, Discriminator, Field, SecretStr, Tag
from pydantic_core import PydanticUseDefault

from components.config.base import Settings, rule
from components.config.formats import (APP_NAME_RE, ENV_NAME_RE, PINNED_IMAGE_RE, RESERVED_ENV, URL_PATH_RE,
                                       is_dns_name)
from components.config.placeholders import MAKE_IT_YOURS, is_example_image
from components.config.values import Shown, choice, env_text, flag, mapping, passes, problem, text, whole_number

POST_DEPLOY_FIX = "expected {path: /launch, method: POST, expectStatus: 200} or {command: ...}"
POST_DEPLOY_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
POST_DEPLOY_METHOD, POST_DEPLOY_STATUS, POST_DEPLOY_RETRIES = "POST", 200, 5


class PostDeployConfig(Settings):
    """After a deploy: an HTTP request through the app's public URL (PostDeployRequest), or a command in the web
    container (PostDeployCommand)."""

    shape_fix: ClassVar[str] = POST_DEPLOY_FIX

    when: Annotated[str, choice("first", "always", fix="must be `first` (after the first deploy only) or `always` "
                                                       "(after every deploy)")] = Field(
        "first", description="`first` (after the first deploy only) or `always` (after every deploy)")


class PostDeployRequest(PostDeployConfig):
    """An HTTPS request through the app's public name (so URLs the app builds from the Host header are right),
    retried with backoff."""

    command: ClassVar[Optional[str]] = None

    path: Annotated[str, text(passes(URL_PATH_RE.match, "expected a URL path such as /launch"))] = Field(
        description="the URL path to request, e.g. `/launch`")
    method: Annotated[str, text(str.upper, passes(POST_DEPLOY_METHODS.__contains__, "expected GET, POST, PUT, PATCH, "
                                                                                    "DELETE or HEAD"),
                                schema=Literal[POST_DEPLOY_METHODS])] = Field(POST_DEPLOY_METHOD,
                                                                              description="the HTTP method")
    expect_status: Annotated[int, whole_number(100, 599)] = Field(POST_DEPLOY_STATUS,
                                                                  description="the status the response must have")
    retries: Annotated[int, whole_number(0, 20)] = Field(POST_DEPLOY_RETRIES, description="retries, with backoff")


class PostDeployCommand(PostDeployConfig):
    """A command run in the web container."""

    # A command hook makes no request; the app's release.conf carries these values all the same (unchanged, so no
    # redeploy happens because of the split into two shapes).
    method: ClassVar[str] = POST_DEPLOY_METHOD
    path: ClassVar[Optional[str]] = None
    expect_status: ClassVar[int] = POST_DEPLOY_STATUS
    retries: ClassVar[int] = POST_DEPLOY_RETRIES

    command: Annotated[str, text()] = Field(description="the command, run in the web container")


def _given(value: Any) -> bool:
    return value not in (None, "") and not (isinstance(value, str) and not value.strip())


def _one_hook(value: Any) -> Any:
    """A hook is a request or a command, never both: said plainly before either shape is tried."""
    if value is None:
        raise PydanticUseDefault()
    if not isinstance(value, dict):
        raise problem(POST_DEPLOY_FIX)
    known = set(PostDeployRequest.setting_keys()) | set(PostDeployCommand.setting_keys())
    if _given(value.get("path")) == _given(value.get("command")) and set(value) <= known:
        raise problem("needs exactly one of `path` (an HTTP request through the app's URL) or `command` (run in the "
                      "web container)")
    return value


PostDeploy = Annotated[Union[Annotated[PostDeployRequest, Tag("request")],
                             Annotated[PostDeployCommand, Tag("command")]],
                       Discriminator(lambda value: "command" if _given(value.get("command")) else "request")]


def _env_entry(name: str, value: Any, secret: bool = False) -> Any:
    if not ENV_NAME_RE.match(name):
        return problem("variable names are letters, digits and underscores, not starting with a digit", secret=secret)
    if name in RESERVED_ENV:
        return problem(f"is set by labstack itself ({', '.join(sorted(RESERVED_ENV))}); rename it", secret=secret)
    if isinstance(value, (dict, list)):  # env_text would hand the app Python's repr of it
        return problem("expected a text, number or boolean; a map or list is no environment value (write it as "
                       "one quoted text, e.g. JSON, if the app parses it)", secret=secret)
    if value is None:
        return problem("has no value; write '' for an empty one", secret=secret)
    return None


VOLUME_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
# Where labstack already mounts something, or what a bind mount would break.
TAKEN_PATHS = ("/", "/data", "/proc", "/sys", "/dev", "/etc", "/usr", "/bin", "/lib", "/run")


def _volume_entry(name: str, path: Any) -> Any:
    if not VOLUME_NAME_RE.match(name):
        return problem("volume names are lower-case letters, digits, - and _, starting with a letter")
    if not isinstance(path, str) or not path.startswith("/") or "//" in path or "/../" in f"{path}/":
        return problem("expected the absolute path in the container where the volume is mounted, e.g. "
                       "/app/uploads")
    normalized = path.rstrip("/") or "/"
    if normalized in TAKEN_PATHS or normalized.startswith("/data/"):
        return problem(f"{normalized} is not free: /data is the app's data folder already (exported with it), and "
                       "system folders cannot be replaced; choose a path such as /app/uploads")
    return None


def _real_digest(image: str) -> str:
    """The example's all-zero placeholder, or a short pattern repeated ("ab" * 32, "deadbeef" * 8), is no digest a
    registry ever made: a SHA-256 uses fewer than 8 of the 16 hex digits, or repeats itself, once in over 10^18."""
    digest = image.rpartition("@sha256:")[2]
    if len(set(digest)) < 8 or any(digest == (digest[:period] * 64)[:64] for period in range(1, 33)):
        raise problem("is a placeholder digest, not an image anyone pushed: run `invoke build push -s <stack> --app "
                      "{app}` to build, push and pin the real one", shown=image)
    if is_example_image(image):
        raise problem(f"{MAKE_IT_YOURS}: the example's image, which no registry holds; build and push your app's: "
                      "`invoke build push -s <stack> --app {app} --repo ghcr.io/<your-lab>/{app}`", shown=image)
    return image


# Words in a variable name that say its value is a credential, which belongs in labstack:appSecrets.
SECRET_NAME_WORDS = ("TOKEN", "PASSWORD", "PASSWD", "SECRET", "KEY", "CREDENTIAL", "PRIVATE")


def looks_like_a_secret_name(name: str) -> bool:
    return any(word in name.upper().split("_") or name.upper().endswith(word) for word in SECRET_NAME_WORDS)


def _app_name(name: Any) -> str:
    return passes(APP_NAME_RE.match, "app names are lower-case letters, digits and dashes, starting with a letter, "
                                     "at most 31 characters")(str(name))


AppName = Annotated[str, BeforeValidator(_app_name, json_schema_input_type=Annotated[str, Field(
    pattern=APP_NAME_RE.pattern)])]


class AppSettings(Settings):
    """One docker-compose app on the server (web + workers, with its own Postgres and Redis)."""

    unknown_setting: ClassVar[str] = "unknown app setting"
    shape_fix: ClassVar[str] = "expected the app's settings as a map with at least `image`"
    missing_fix: ClassVar[dict[str, str]] = {
        "image": "{key} is not set: build and pin one with `invoke build push -s <stack> --app {app}`"}
    tagged_unions: ClassVar[frozenset[str]] = frozenset({"postDeploy"})

    # Pinned, so a redeploy happens only when the digest changes.
    image: Annotated[str, text(passes(PINNED_IMAGE_RE.match, "must be pinned by digest (repo@sha256:<64 hex>) so a "
                                      "redeploy is exact: run `invoke build push -s <stack> --app {app}` to pin it"),
                            _real_digest)]\
        = Field(description="`repo@sha256:…`, pinned by digest (`invoke build push` writes it)")
    build: Annotated[Optional[str], text()] = Field(None, description="the folder `invoke build` builds the image from")
    port: Annotated[int, whole_number(1, 65535)] = Field(5000, description="the port the web process listens on")
    command: Annotated[Optional[str], text(), Shown("the image's CMD")] = Field(None, description="web command")
    workers: Annotated[int, whole_number(0, 64)] = Field(0, description="number of worker containers (same image)")
    worker_command: Annotated[Optional[str], text()] = Field(None, description="their command, e.g. `python worker.py`")
    env: Annotated[Mapping[str, str], mapping("expected a map of variable names to values", _env_entry, env_text,
                                              schema=dict[str, Union[str, int, float, bool]])] = Field(
        {}, description="environment variables, verbatim (names keep their case, `$` is not interpolated)")
    # Explicit, so adding or removing another app never moves this one.
    host: Annotated[Optional[str], text(passes(lambda host: host == "@" or is_dns_name(host), "expected `@` (the DNS "
                                               "host itself), a label such as `elif`, or a full DNS name")),
                    Shown("`<name>.<dns host>`")] = Field(
        None, description="`@` for the DNS host itself, another label, or a full name; without a DNS host the base "
                          "is `<ip>.nip.io`")
    health_path: Annotated[str, text(passes(URL_PATH_RE.match, "expected a URL path such as /health"))] = Field(
        "/health", description="must answer 2xx before a release takes traffic")
    health_timeout_seconds: Annotated[int, whole_number(5, 3600, " seconds")] = Field(
        120, description="how long a new release may take to become healthy")
    postgres: Annotated[bool, flag()] = Field(
        True, description="a Postgres 16 for the app (database and user named after it; password made on the server)")
    redis: Annotated[bool, flag()] = Field(True, description="a Redis 7 for the app")
    clock_command: Annotated[Optional[str], text()] = Field(
        None, description="one more service of the same image (a scheduler); like workers, no port, no route")
    worker_settle_seconds: Annotated[int, whole_number(0, 600, " seconds")] = Field(
        10, description="after the switch, each new worker and clock must prove stable: run without an exit or a "
                        "restart until it has started working and then gone quiet (waiting for jobs or for its next "
                        "tick: no CPU used across two looks 0.25 s apart), at most this long (a worker still busy "
                        "then passes); an exit or a restart before (a wrong command crash-loops) fails the deploy "
                        "with their logs and the previous release serves again. Typically a second. 0: no check")
    worker_health_command: Annotated[Optional[str], text(passes(lambda command: "\n" not in command,
                                                                "expected one line"))] = Field(
        None, description="also run in each new worker and clock container once they have proven stable; it must exit 0 "
                          "(e.g. `rq info --url $REDIS_URL`), or the deploy is rolled back the same way")
    export_command: Annotated[Optional[str], text()] = Field(
        None, description="the app's own export, run by `invoke export` (and the export before a destroy) in a "
                          "one-off container of the app's image: it writes its files into $LABSTACK_EXPORT_DIR (its "
                          "working folder), e.g. `dallinger export --app $EXPERIMENT_ID --local`; they arrive as "
                          "app-export.tar.gz in the export, listed in its manifest")
    busy_command: Annotated[Optional[str], text(passes(lambda command: "\n" not in command,
                                                       "expected one line"))] = Field(
        None, description="the app's own activity signal for labstack:autoStop, run in its web container every "
                          "minute: exit 0 means busy (e.g. recruitment is open), 1 idle; any other answer, or none, "
                          "counts as busy")
    volumes: Annotated[Mapping[str, str], mapping("expected a map of volume names to container paths, e.g. "
                                                  "{uploads: /app/uploads}", _volume_entry,
                                                  lambda path: path.rstrip("/"), schema=dict[str, str])] = Field(
        {}, description="extra folders the app keeps, `{name: /container/path}`: each is the server folder "
                        "`volumes/<name>` beside the app's data, mounted into web, workers and clock, exported and "
                        "kept like `/data`")
    stop_grace_seconds: Annotated[int, whole_number(1, 3600, " seconds")] = Field(
        30, description="how long web, workers and clock may take to finish their work after SIGTERM (on an update, "
                        "a pause or a destroy) before they are killed; every container runs Docker's minimal init "
                        "(tini) as PID 1, which passes the signal on to the command (exec'd, not wrapped in a shell), "
                        "so a process without its own SIGTERM handler (a clock, a plain script) stops at once too")
    init_command: Annotated[Optional[str], text()] = Field(
        None, description="run once per app lifetime in a one-off container of the image, after its database is "
                          "ready and before web takes traffic (e.g. `python init_db.py`); recorded on the server, "
                          "never re-run on redeploys, restarts or reboots")
    init_run: Annotated[int, whole_number(1, 1_000_000)] = Field(
        1, description="raise it (2, 3, …) for a new batch: `initCommand` runs once more and so does a `when: first` "
                       "post-deploy (Dallinger's /launch)")
    post_deploy: Annotated[Optional[PostDeploy], BeforeValidator(_one_hook)] = Field(
        None, description="`{path: /launch, method: POST, expectStatus: 200, retries: 5, when: first}` — an HTTPS "
                          "request through the app's public name (so URLs the app builds from the Host header are "
                          "right), retried with backoff; or `{command: ..., when: always}` run in the web container. "
                          "`when`: `first` (after the first deploy of each `initRun`) or `always`. A failure fails `pulumi up` "
                          "with the response")

    @rule("volumes")
    def _one_volume_per_path(self, context: dict) -> list:
        seen: dict[str, str] = {}
        problems = []
        for name, path in self.volumes.items():  # paths without their trailing /: /app/uploads/ is /app/uploads
            if path in seen:
                problems.append(self.at("volumes", path, problem(
                    f"is also the path of volume {seen[path]}: Docker refuses two mounts on one path (and only "
                    "after the server exists); give each volume its own path"), name))
            seen.setdefault(path, name)
        return problems

    @rule("workers", "worker_command")
    def _workers_need_a_command(self, context: dict) -> list:
        if self.workers and not self.worker_command:
            return [self.at("workers", self.workers, problem(line=f"{{key}} = {self.workers} but workerCommand is "
                                                                  "not set: give the command the workers run, e.g. "
                                                                  "`python worker.py`"))]
        return []


class AppConfig(AppSettings):
    """An app as the program deploys it: its settings, its name (the key under labstack:apps) and its secrets (from
    labstack:appSecrets, never printed)."""

    name: str
    secrets: Mapping[str, SecretStr] = {}


PROCESS_COMMANDS = {"command": "web", "worker_command": "workers", "clock_command": "clock"}


def is_compound(command: str) -> bool:
    """Whether the command needs the shell to stay (operators, redirections, a leading NAME=value): then the shell,
    not the program, receives SIGTERM. Unbalanced quotes count as compound: the shell will report them."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:
        return True
    return ("\n" in command or any(set(word) <= set("();<>|&") for word in words)
            or bool(words and "=" in words[0] and ENV_NAME_RE.match(words[0].split("=", 1)[0])))


def secret_env_problems(secrets: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(name, problem) for each secret an app could not receive as an environment variable."""
    return [(name, error) for name, value in secrets.items()
            if (error := _env_entry(name, value, secret=True)) is not None]
