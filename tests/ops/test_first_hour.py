"""The first hour of a new user: the Pulumi verbs labstack offers instead of bare `pulumi` commands (recorded by a
fake `pulumi`), the example refusing to deploy until it is yours, and the fix lines a newcomer meets first."""
from __future__ import annotations

import json
import os
import re
import shutil

import pytest

from components.config import ConfigError, load_stack_config
from labstack.stacks import stackfile
from labstack.stacks.pulumi_cli import POLICY_PACK
from tests.ops.test_tasks import invoke
from tests.unit.helpers import write_private_key

POLICY = str(POLICY_PACK)
SELECT = ["stack", "select", "--stack", "paris-batch2"]
HISTORY = ["stack", "history", "--json", "--show-secrets", "--page-size", "1", "--page", "1", "--stack", "paris-batch2"]


def typed(calls):
    """The recorded commands as an operator would type them: without the Automation API's own flags."""
    from labstack.stacks.pulumi_cli import _without_automation_flags

    return [_without_automation_flags(argv) for argv in calls]


# --- verbs: every printed command works as printed in a new shell -------------------------------------------------

def test_preview_destroy_and_passthrough_run_pulumi_with_the_projects_state(write_stack, recording_pulumi):
    write_stack()
    assert invoke("preview", "-s", "paris-batch2") == 0
    assert invoke("destroy", "-s", "paris-batch2", "--yes") == 0
    assert invoke("pulumi", "-s", "paris-batch2", "--", "stack", "export", "--file", "backup.json") == 0
    assert typed(recording_pulumi()) == [
        SELECT, ["preview", "--policy-pack", POLICY, "--stack", "paris-batch2"],
        SELECT, ["destroy", "--yes", "--stack", "paris-batch2"], HISTORY,
        ["stack", "export", "--file", "backup.json", "--stack", "paris-batch2"]]


def test_destroy_without_yes_asks_and_without_a_terminal_refuses(write_stack, recording_pulumi, capsys):
    write_stack()
    assert invoke("destroy", "-s", "paris-batch2") == 1  # pytest's stdin is no terminal
    assert capsys.readouterr().err.strip().splitlines() == [
        "labstack: updating paris-batch2 needs a yes: run it in a terminal to confirm after the preview, or pass "
        "--yes (yes=True in Python) to update without asking"]
    assert recording_pulumi() == []


def test_config_sets_plain_nested_and_secret_values_creating_the_stack(write_stack, recording_pulumi):
    write_stack()
    assert invoke("config", "-s", "paris-batch2", "--set", "labstack:instanceType=t3.large",
                  "--set", "labstack:autoStop.idleMinutes=60") == 0
    assert invoke("config", "-s", "paris-batch2", "--secret", "--set", "labstack:dashboardPassword=a=b") == 0
    assert typed(recording_pulumi()) == [
        SELECT, ["config", "set", "labstack:instanceType", "--plaintext", "--stack", "paris-batch2", "--", "t3.large"],
        ["config", "set", "--path", "labstack:autoStop.idleMinutes", "--plaintext", "--stack", "paris-batch2", "--",
         "60"],
        SELECT, ["config", "set", "labstack:dashboardPassword", "--secret", "--stack", "paris-batch2", "--", "a=b"]]


def test_config_refuses_a_setting_without_key_and_value(write_stack, recording_pulumi, capsys):
    write_stack()
    assert invoke("config", "-s", "paris-batch2", "--set", "instanceType") == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "labstack: --set 'instanceType': expected KEY=VALUE with a namespaced key, e.g. --set "
        "labstack:instanceType=t3.large or --set aws:region=eu-west-3"]
    assert recording_pulumi() == []


def test_outputs_as_table_json_and_one_value(write_stack, recording_pulumi, monkeypatch, capsys):
    write_stack()
    outputs = {"url": "https://elif.lab.test", "sshCommand": "ssh -i /k/labstack_ed25519 -o UserKnownHostsFile=/a/very/"
               "long/path/known_hosts ubuntu@100.64.0.7 -p 22 " + "x" * 80}
    monkeypatch.setenv("FAKE_PULUMI_OUTPUTS", json.dumps(outputs))
    assert invoke("outputs", "-s", "paris-batch2", "--json") == 0
    assert json.loads(capsys.readouterr().out) == outputs
    assert invoke("outputs", "-s", "paris-batch2", "--key", "sshCommand") == 0
    assert capsys.readouterr().out == outputs["sshCommand"] + "\n"
    assert invoke("outputs", "-s", "paris-batch2") == 0
    table = capsys.readouterr().out
    assert outputs["sshCommand"] in table  # piped: never wrapped at 80 columns
    assert invoke("outputs", "-s", "paris-batch2", "--key", "nope") == 1
    assert capsys.readouterr().err.strip() == ("labstack: stack 'paris-batch2' has no output 'nope' (it has: sshCommand, "
                                               "url)")


def test_new_stack_works_before_the_first_up(write_stack, stacks_dir, recording_pulumi, capsys):
    write_stack()
    assert invoke("new", "-s", "rome-pilot", "--like", "paris-batch2") == 0
    assert (stacks_dir / "Pulumi.rome-pilot.yaml").read_text() == (stacks_dir / "Pulumi.paris-batch2.yaml").read_text()
    assert capsys.readouterr().out.strip() == (
        f"wrote {stacks_dir / 'Pulumi.rome-pilot.yaml'}: edit it (or `invoke config -s rome-pilot --set KEY=VALUE`), "
        "then `invoke check -s rome-pilot` and `invoke up -s rome-pilot`")
    assert recording_pulumi() == []  # no Pulumi CLI needed to start a stack
    assert invoke("config", "-s", "rome-pilot", "--set", "labstack:instanceType=t3.large") == 0
    assert typed(recording_pulumi()) == [
        ["stack", "select", "--stack", "rome-pilot"],
        ["config", "set", "labstack:instanceType", "--plaintext", "--stack", "rome-pilot", "--", "t3.large"]]
    assert invoke("new", "-s", "rome-pilot", "--like", "paris-batch2") == 1
    assert "exists already" in capsys.readouterr().err
    assert invoke("new", "-s", "x y", "--like", "paris-batch2") == 1
    assert capsys.readouterr().err.strip() == ("labstack: --stack 'x y': a stack name is letters, digits, '-', '_' and "
                                               "'.', e.g. rome-pilot")


def test_nothing_labstack_prints_is_a_bare_pulumi_command(write_stack, recording_pulumi, capsys):
    """A broken stack file's fix lines name the invoke tasks (with the stack), never a bare `pulumi`."""
    path = write_stack()
    path.write_text(path.read_text().replace('labstack:storageGb: "40"', 'labstack:storageGb: lots'))
    assert invoke("check", "-s", "paris-batch2") == 1
    out = capsys.readouterr().out
    assert "`invoke config -s paris-batch2 --set labstack:storageGb=32`" in out
    assert "`pulumi " not in out.replace("not a `pulumi preview`", "")


# --- the example refuses to deploy until it is yours --------------------------------------------------------------

EXAMPLE_LINES = [
    "labstack:sshCidrs.0 = '198.51.100.0/24': make it yours: a documentation-only network (RFC 5737), from which "
    "nobody connects; list your lab's network or this machine's address (`curl -s https://checkip.amazonaws.com`): "
    "`invoke config -s paris-batch2 --set 'labstack:sshCidrs[0]'=<your-address>/32`",
    "labstack:dnsHost = 'elif.my-experiments.org': make it yours: the example's domain; use a name under a domain "
    "whose Route53 hosted zone you have, e.g. `invoke config -s paris-batch2 --set "
    "labstack:dnsHost=elif.<your-domain>`",
    "labstack:apps.elif.image = 'ghcr.io/your-lab/elif@sha256:8872819b3733d273a2399877f1a949d28ab6ad53d2dc7ee09f0dbe3b"
    "af50859d': make it yours: the example's image, which no registry holds; build and push your app's: "
    "`invoke build push -s paris-batch2 --app elif --repo ghcr.io/<your-lab>/elif`"]


@pytest.fixture
def the_example(stacks_dir, tmp_path, monkeypatch):
    """The project's own example stack file, with a real key where its serverPem points."""
    shutil.copy(stackfile.PROJECT_DIR / "stacks" / "Pulumi.paris-batch2.yaml", stacks_dir)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / ".ssh").mkdir(parents=True)
    write_private_key(tmp_path / "home" / ".ssh" / "labstack_ed25519")
    return stacks_dir / "Pulumi.paris-batch2.yaml"


def test_the_unedited_example_is_refused_by_check_and_up(the_example, recording_pulumi, capsys):
    assert invoke("check", "-s", "paris-batch2") == 1
    out = capsys.readouterr().out
    for line in EXAMPLE_LINES:
        assert f"    - {line}\n" in out
    assert invoke("up", "-s", "paris-batch2", "--yes") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["labstack: the stack configuration has 3 problem(s):", *(f"  - {line}" for line in EXAMPLE_LINES)]
    assert recording_pulumi() == []  # refused before pulumi ran


def test_the_program_refuses_the_unedited_example_with_the_same_lines(the_example):
    """`pulumi up` runs the program, which loads the config through the same model."""
    from components.config.pulumi_source import StackConfigError, load_stack_config as program_load

    offline = stackfile.read_offline("paris-batch2")
    with pytest.raises(StackConfigError) as caught:
        program_load(offline.config, "paris-batch2", secret_keys=offline.secret_keys)
    assert caught.value.problems == EXAMPLE_LINES


def test_the_example_made_yours_passes(the_example, capsys):
    text = the_example.read_text().replace("198.51.100.0/24", "100.64.0.0/24").replace(
        "my-experiments.org", "psych-lab.example.net").replace(
        "ghcr.io/your-lab/elif", "ghcr.io/psych-lab/elif")
    the_example.write_text(text)
    assert invoke("check", "-s", "paris-batch2") == 0
    assert "✓ paris-batch2: the config is valid" in capsys.readouterr().out


@pytest.mark.parametrize("key, value, shown, rfc", [
    ("sshCidrs", ["100.64.0.0/24", "203.0.113.9/32"], "labstack:sshCidrs.1 = '203.0.113.9/32'", "RFC 5737"),
    ("ingressCidrs", ["192.0.2.0/25"], "labstack:ingressCidrs.0 = '192.0.2.0/25'", "RFC 5737"),
    ("ingressIpv6Cidrs", ["2001:db8:1::/48"], "labstack:ingressIpv6Cidrs.0 = '2001:db8:1::/48'", "RFC 3849"),
])
def test_documentation_networks_are_refused(pem_config, key, value, shown, rfc):
    with pytest.raises(ConfigError) as caught:
        load_stack_config({**pem_config, f"labstack:{key}": value}, stack="lab")
    index = shown.split(".")[1].split(" ")[0]
    assert caught.value.problems == [
        f"{shown}: make it yours: a documentation-only network ({rfc}), from which nobody connects; list your lab's "
        f"network or this machine's address (`curl -s https://checkip.amazonaws.com`): `invoke config -s lab --set "
        f"'labstack:{key}[{index}]'=<your-address>/32`"]


# --- messages -----------------------------------------------------------------------------------------------------

@pytest.fixture
def pem_config(tmp_path):
    pem = tmp_path / "id_ed25519"
    write_private_key(pem)
    return {"aws:region": "eu-west-3", "labstack:serverPem": str(pem), "labstack:sshCidrs": ["100.64.0.0/24"]}


def problems(config, stack="lab"):
    with pytest.raises(ConfigError) as caught:
        load_stack_config(config, stack=stack)
    return caught.value.problems


def test_a_fix_names_the_stack_and_a_real_example(pem_config):
    assert problems({**pem_config, "labstack:autoStop": {"idleMinutes": "sixty"}}) == [
        "labstack:autoStop.idleMinutes = 'sixty': expected a whole number minutes, e.g. `invoke config -s lab --set "
        "'labstack:autoStop.idleMinutes'=60`"]


def test_a_misspelt_key_is_named_once(pem_config):
    config = {**pem_config, "aws:regoin": "eu-west-3"}
    del config["aws:region"]
    assert problems(config) == ["aws:regoin = 'eu-west-3': unknown key: did you mean aws:region?"]


def test_a_public_key_as_server_pem_is_named_before_its_mode(pem_config, tmp_path):
    public = tmp_path / "id_ed25519.pub"
    public.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0Jk0Jk0Jk0Jk0Jk0Jk0Jk0Jk0Jk0Jk0Jk0Jk0Jk0 me@lab\n")
    public.chmod(0o644)
    assert problems({**pem_config, "labstack:serverPem": str(public)}) == [
        f"labstack:serverPem = '{public}': this is the public half of a key; labstack needs the private one: drop the "
        f".pub ({tmp_path / 'id_ed25519'})"]


def test_key_advice_makes_the_ssh_folder_private_first(pem_config, tmp_path):
    missing = tmp_path / "new-home" / ".ssh" / "labstack_ed25519"
    assert problems({**pem_config, "labstack:serverPem": str(missing)}) == [
        f"labstack:serverPem = '{missing}': no such file {missing}; create one with `mkdir -p -m 700 "
        f"{missing.parent} && ssh-keygen -t ed25519 -f {missing}`"]


def test_missing_aws_credentials_name_aws_configure(tmp_path, monkeypatch, capsys):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "LABSTACK_AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    assert invoke("list.instances", "--region", "eu-west-3") == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "labstack: no AWS credentials found: run `aws configure` (or `aws configure --profile <name>` and `export "
        "AWS_PROFILE=<name>`), or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")


@pytest.mark.parametrize("argv, line", [
    (["list.instances", "--region", "mars-1"], "labstack: --region 'mars-1' is no AWS region; `invoke list.regions` "
                                               "lists those your account can use, e.g. eu-west-3"),
    (["list.types", "--region", "eu-wst-3"], "labstack: --region 'eu-wst-3' is no AWS region: did you mean eu-west-3?"),
    (["list.volumes", "--region", "mars-1"], "labstack: --region 'mars-1' is no AWS region; `invoke list.regions` "
                                             "lists those your account can use, e.g. eu-west-3"),
])
def test_regions_are_checked_offline_before_any_aws_call(argv, line, monkeypatch, capsys):
    import botocore.endpoint

    def no_network(*args, **kwargs):
        raise AssertionError("AWS was called")
    monkeypatch.setattr(botocore.endpoint.Endpoint, "make_request", no_network)
    assert invoke(*argv) == 1
    assert capsys.readouterr().err.strip().splitlines() == [line]


# --- output for scripts and long evaluations ----------------------------------------------------------------------

def test_list_instances_as_json(capsys):
    from labstack.tasks import actions as commands
    from tests.ops.test_list_instances import SELF_STOPPED, OneRegion

    [row] = commands.list_instances("eu-west-3", client_for=lambda region: OneRegion(SELF_STOPPED), as_json=True)
    rows = json.loads(capsys.readouterr().out)
    assert rows == [{**rows[0], "instance_id": row.instance_id, "stack": row.stack, "region": "eu-west-3",
                     "stopped": "2026-11-29 01:17: stopped itself (watcher)"}]


def test_every_list_task_takes_json():
    import tasks

    listing = [name for name in tasks.ns.task_names if name.startswith("list.")] + ["job.status", "ray.jobs"]
    assert {name: "json" in [a.name for a in tasks.ns[name].get_arguments()] for name in listing} == \
        {name: True for name in listing}


def test_a_large_cluster_check_summarises_its_outputs(stacks_dir, server_pem, capsys):
    (stacks_dir / "Pulumi.sweep.yaml").write_text(
        f"config:\n  aws:region: eu-west-3\n  labstack:serverPem: {server_pem}\n  labstack:sshCidrs: [100.64.0.0/24]\n"
        "  labstack:cluster:\n    workers: 20\n    workerType: c7i.large\n")
    assert invoke("check", "-s", "sweep") == 0
    out = capsys.readouterr().out
    assert "✓ sweep: the config is valid" in out
    assert max(len(line) for line in out.splitlines()) <= 300
    assert len(out) < 6000, len(out)
    assert re.search(r"    output \w+: a (map of \d+ entries|list of \d+ items)", out), out
