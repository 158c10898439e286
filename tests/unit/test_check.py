"""`invoke check` accepts good stack files, rejects broken ones with clear messages, and says it is no preview."""
from __future__ import annotations

import io

import pytest
from rich.console import Console

import labstack.stacks.stackfile
from labstack.stacks.check import check_stacks
from tests.unit.helpers import digest, write_private_key


@pytest.fixture
def stacks(tmp_path, monkeypatch):
    monkeypatch.setattr(labstack.stacks.stackfile, "STACKS_DIR", tmp_path)
    key = tmp_path / "id_ed25519"
    write_private_key(key)
    (tmp_path / "Pulumi.good.yaml").write_text(
        f"config:\n  aws:region: eu-west-3\n  labstack:serverPem: {key}\n  labstack:sshCidrs: [100.64.0.0/24]\n  labstack:instanceType: t3.small\n")
    (tmp_path / "Pulumi.broken.yaml").write_text(
        f"config:\n  aws:region: eu-west-3\n  labstack:serverPem: {key}\n  labstack:sshCidrs: [100.64.0.0/24]\n  labstack:storageGb: '2'\n"
        "  labstack:desiredState: asleep\n")
    return tmp_path


def run_check(stack=None):
    out = io.StringIO()
    ok = check_stacks(stack, Console(file=out, width=200))
    return ok, out.getvalue()


def test_good_stack_lists_resources_and_says_not_a_preview(stacks):
    ok, text = run_check("good")
    assert ok
    assert "✓ good" in text and "Instance" in text and "SecurityGroupIngressRule" in text
    assert "not a `pulumi preview`" in text and "AWS was not contacted" in text


def test_broken_stack_names_each_key_and_fails(stacks):
    ok, text = run_check("broken")
    assert not ok
    assert "2 problem(s)" in text
    assert "labstack:storageGb = '2': must be between 8 and 16384 GB" in text
    assert "labstack:desiredState = 'asleep': must be `running` or `stopped`" in text


def test_all_stacks_fail_when_one_is_broken(stacks):
    ok, text = run_check()
    assert not ok and "✓ good" in text and "✗ broken" in text


def test_unknown_stack_lists_known_ones(stacks):
    ok, text = run_check("nope")
    assert not ok and "unknown stack 'nope'" in text
    assert "broken, good" in text and "`invoke new -s nope --like paris-batch2`" in text


def test_stack_with_secure_values_checks_cleanly_and_prints_no_ciphertext(stacks):
    key = stacks / "id_ed25519"
    (stacks / "Pulumi.secret.yaml").write_text(
        f"config:\n  aws:region: eu-west-3\n  labstack:serverPem: {key}\n  labstack:sshCidrs: [100.64.0.0/24]\n"
        "  labstack:dashboardPassword:\n    secure: v1:ciphertextAAAA\n"
        "  labstack:appSecrets:\n    elif:\n      API_TOKEN:\n        secure: v1:ciphertextBBBB\n"
        "  labstack:apps:\n    elif:\n      image: registry.example.org/lab/elif@sha256:" + digest("0f") + "\n")
    ok, text = run_check("secret")
    assert ok, text
    assert "ciphertext" not in text and "Command" in text


def test_an_unreadable_stack_is_one_line_and_the_others_are_still_checked(stacks):
    (stacks / "Pulumi.atab.yaml").write_text("config:\n\taws:region: eu-west-3\n")
    ok, text = run_check()
    assert not ok
    assert f"✗ atab: {stacks / 'Pulumi.atab.yaml'}, line 2, column 1: a tab character: YAML indents with spaces " \
           "only; replace it with spaces" in text
    assert "Traceback" not in text and "✓ good" in text and "✗ broken" in text  # the ones after it too


def test_warnings_are_shown_and_never_fail(stacks):
    key = stacks / "id_ed25519"
    (stacks / "Pulumi.warned.yaml").write_text(
        f"config:\n  aws:region: eu-west-3\n  labstack:serverPem: {key}\n  labstack:sshCidrs: [100.64.0.0/24]\n"
        "  labstack:apps:\n    elif:\n      image: registry.example.org/lab/elif@sha256:" + digest("0f") + "\n"
        "      env:\n        API_TOKEN: plain\n")
    ok, text = run_check("warned")
    assert ok and "✓ warned" in text
    assert ("    ! labstack:apps.elif.env.API_TOKEN: the name looks secret but the value is plain text in the stack "
            "file (and in git); if it is a credential, move it: `invoke config -s warned --secret "
            "--set 'labstack:appSecrets.elif.API_TOKEN'=<value>` and remove it from env") in text


def test_a_plain_password_in_the_file_is_refused_by_check(stacks):
    key = stacks / "id_ed25519"
    (stacks / "Pulumi.plain.yaml").write_text(
        f"config:\n  aws:region: eu-west-3\n  labstack:serverPem: {key}\n  labstack:sshCidrs: [100.64.0.0/24]\n"
        "  labstack:dashboardPassword: correct-horse-battery\n")
    ok, text = run_check("plain")
    assert not ok and "correct-horse" not in text
    assert ("labstack:dashboardPassword = '[secret]': is in plain text in the stack file: set it encrypted with "
            "`invoke config -s plain --secret --set labstack:dashboardPassword=<password>`") in text


@pytest.mark.parametrize("key, meant", [("labstak:dnsHost", "labstack:dnsHost"), ("lbastack:tags", "labstack:tags")])
def test_a_misspelt_namespace_is_one_line_from_check_and_from_the_program(stacks, pem, key, meant):
    from components.config.pulumi_source import StackConfigError
    from labstack.stacks.offline import evaluate
    from tests.unit.helpers import base_config

    value = "elif.experiments.test" if key.endswith("dnsHost") else {"team": "psych"}
    line = f"{key} = {value!r}: unknown key: did you mean {meant}?".replace("{'team': 'psych'}", '\'{"team": "psych"}\'')
    (stacks / "Pulumi.typo.yaml").write_text((stacks / "Pulumi.good.yaml").read_text() + f"  {key}: {value}\n")
    ok, text = run_check()
    assert not ok and f"✗ typo: stacks/Pulumi.typo.yaml has 1 problem(s):\n    - {line}\n" in text
    assert "Traceback" not in text and "✓ good" in text
    # a bare `pulumi up` runs the same program: Pulumi hands it every key, and it refuses this one
    result = evaluate({**base_config(pem), key: value}, "paris-batch2")
    assert isinstance(result.error, StackConfigError) and result.error.problems == [line]
    assert not any(r.custom for r in result.resources)  # before anything is declared


def test_a_stack_file_that_is_no_utf8_is_one_line_and_the_others_are_still_checked(stacks):
    (stacks / "Pulumi.latin.yaml").write_bytes(b"config:\n  labstack:creator: Ren\xe9\n")
    ok, text = run_check()
    assert not ok
    assert (f"✗ latin: {stacks / 'Pulumi.latin.yaml'}, byte offset 31 (line 2): byte 0xe9 is not UTF-8, which Pulumi "
            "reads stack files as; save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)") in text
    assert "Traceback" not in text and "✓ good" in text and "✗ broken" in text


def test_the_policies_run_offline_in_check(stacks):
    good = (stacks / "Pulumi.good.yaml").read_text()
    (stacks / "Pulumi.open.yaml").write_text(good + "  labstack:ingressPorts: [22, 80, 443, 5432]\n"
                                                    "  labstack:ingressCidrs: [0.0.0.0/1, 128.0.0.0/1]\n"
                                                    "  labstack:ingressIpv6Cidrs: []\n")
    ok, text = run_check("open")
    assert not ok and "would declare" not in text
    assert text.splitlines()[:3] == [
        "✗ open: `pulumi up` would be stopped by 2 mandatory policy violation(s) (policy/):",
        "    - policy no-data-ports-open-to-world: open-in-5432-0-0-0-0-1: opens Postgres (5432) to the world "
        "(0.0.0.0/1, which with 128.0.0.0/1 covers every IPv4 address). Fix: remove 5432 from labstack:ingressPorts, "
        "or list only your own networks in labstack:ingressCidrs; reach these services over SSH or through Caddy",
        "    - policy no-data-ports-open-to-world: open-in-5432-128-0-0-0-1: opens Postgres (5432) to the world "
        "(128.0.0.0/1, which with 0.0.0.0/1 covers every IPv4 address). Fix: remove 5432 from labstack:ingressPorts, "
        "or list only your own networks in labstack:ingressCidrs; reach these services over SSH or through Caddy"]


def test_advisory_policies_are_warnings_in_check(stacks, monkeypatch):
    good = (stacks / "Pulumi.good.yaml").read_text()
    (stacks / "Pulumi.wide.yaml").write_text(good.replace("[100.64.0.0/24]", "[0.0.0.0/0]"))
    config = stacks / "policy-config.json"
    config.write_text('{"ssh-not-open-to-world": "advisory", "instance-type-allowed": "disabled"}')
    monkeypatch.setattr("labstack.stacks.check.POLICY_CONFIG", config)
    ok, text = run_check("wide")
    assert ok and "✓ wide" in text
    assert ("    ! policy ssh-not-open-to-world: wide-in-22-ipv4-any: SSH (22) is open to the world (0.0.0.0/0). Fix: "
            "list only your own networks in labstack:sshCidrs") in text
    config.write_text('{"ssh-not-open-to-world": "mandatory"}')
    ok, text = run_check("wide")
    assert not ok and "    - policy ssh-not-open-to-world: wide-in-22-ipv4-any: SSH (22) is open" in text
