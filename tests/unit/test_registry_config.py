"""labstack:registryAuth and the ECR repositories the app images name (what the instance role may pull)."""
from __future__ import annotations

import pytest

from components.config.messages import ConfigError
from components.config.registry import EcrRepository, ecr_repositories
from components.config.stack import load_stack_config
from tests.unit.helpers import base_config, digest

DIGEST = "@sha256:" + digest("4be1c0de")
FIX = ("expected a map registry -> {username, password}: `invoke config -s paris-batch2 "
       "--set 'labstack:registryAuth[\"ghcr.io\"].username'=<user>` and `invoke config -s paris-batch2 --secret "
       "--set 'labstack:registryAuth[\"ghcr.io\"].password'=<token>`")


def test_ecr_repositories_are_found_once_each_with_their_arn():
    found = ecr_repositories([
        f"123456789012.dkr.ecr.eu-west-3.amazonaws.com/lab/elif{DIGEST}",
        f"123456789012.dkr.ecr.eu-west-3.amazonaws.com/lab/elif:v2{DIGEST}",
        f"210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn/survey{DIGEST}",
        f"ghcr.io/lab/poll{DIGEST}", f"docker.io/library/redis{DIGEST}"])
    assert found == (EcrRepository("123456789012", "eu-west-3", "lab/elif"),
                     EcrRepository("210987654321", "cn-north-1", "survey", "aws-cn"))
    assert [(r.registry, r.arn) for r in found] == [
        ("123456789012.dkr.ecr.eu-west-3.amazonaws.com", "arn:aws:ecr:eu-west-3:123456789012:repository/lab/elif"),
        ("210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn", "arn:aws-cn:ecr:cn-north-1:210987654321:repository/survey")]


def test_registry_auth_is_read_with_the_password_kept_secret(pem):
    config = load_stack_config(base_config(pem, registryAuth={"ghcr.io": {"username": "lab-bot", "password": "tok"}}),
                               stack="paris-batch2", project="labstack")
    login = config.registry_auth["ghcr.io"]
    assert login.username == "lab-bot" and login.password.get_secret_value() == "tok" and "tok" not in repr(login)


@pytest.mark.parametrize("auth, line", [
    ({"123456789012.dkr.ecr.eu-west-3.amazonaws.com": {"username": "AWS", "password": "x"}},
     "labstack:registryAuth = '[secret]': registry '123456789012.dkr.ecr.eu-west-3.amazonaws.com' is ECR: the server "
     "pulls from the stack's ECR repositories with its instance role, so remove this entry"),
    ({"not a host": {"username": "u", "password": "p"}},
     "labstack:registryAuth = '[secret]': registry 'not a host' is not a registry host name such as ghcr.io or "
     "registry.example.org:5000"),
    (["ghcr.io"], f"labstack:registryAuth = '[secret]': {FIX}"),
    ({"ghcr.io": {"username": "u", "password": "p", "email": "e"}},
     "labstack:registryAuth.ghcr.io.email = '[secret]': unknown setting; known: password, username"),
])
def test_bad_registry_auth_is_one_line(pem, auth, line):
    with pytest.raises(ConfigError) as failure:
        load_stack_config(base_config(pem, registryAuth=auth), stack="paris-batch2", project="labstack")
    assert str(failure.value).splitlines()[1:] == [f"  - {line}"]


def test_a_registry_password_in_plain_text_is_refused_with_the_command_that_encrypts_it(pem):
    raw = base_config(pem, registryAuth={"ghcr.io": {"username": "lab-bot", "password": "tok"},
                                         "registry.example.org:5000": {"username": "ci", "password": "tok2"}})
    with pytest.raises(ConfigError) as failure:
        load_stack_config(raw, stack="paris-batch2", secret_keys=set())
    assert failure.value.problems == [
        f"labstack:registryAuth.{host}.password = '[secret]': the password is in plain text in the stack file: set it "
        f"encrypted with `invoke config -s paris-batch2 --secret --set 'labstack:registryAuth[\"{host}\"].password'=<token>`"
        for host in ("ghcr.io", "registry.example.org:5000")]
    # `--secret --path` makes Pulumi hold the whole key encrypted: then the stack is accepted.
    config = load_stack_config(raw, stack="paris-batch2", secret_keys={"labstack:registryAuth"})
    assert config.registry_auth["ghcr.io"].password.get_secret_value() == "tok"
