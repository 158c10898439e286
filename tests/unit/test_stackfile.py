"""Stack files read as Pulumi reads them (yaml.v3, YAML 1.2): what cannot be read is one line naming the file, line
and column; what Pulumi would read differently from PyYAML is refused or warned about; secure values are known."""
from __future__ import annotations

import pytest

import labstack.stacks.stackfile
from components.config import ConfigError
from labstack.stacks.stackfile import PROJECT_DIR, StackFileError, load, parse_stack_text, read_offline
from tests.unit.helpers import write_private_key

FILE = PROJECT_DIR / "stacks" / "Pulumi.x.yaml"
AT = "stacks/Pulumi.x.yaml, line"
PINNED = "registry.example.org/lab/elif@sha256:" + "0f" * 32

UNREADABLE = [
    ("tab", "config:\n\taws:region: eu-west-3\n",
     f"{AT} 2, column 1: a tab character: YAML indents with spaces only; replace it with spaces"),
    ("tab-inside", "config:\n  labstack:tags:\n  \tteam: x\n",
     f"{AT} 3, column 3: a tab character: YAML indents with spaces only; replace it with spaces"),
    ("broken-mapping", "config:\n  labstack:dnsHost: a: b\n",
     f"{AT} 2, column 22: a `: ` where no key can start: a line indented deeper than the key above it, or a value "
     "holding `: ` that needs quotes"),
    ("deeper-line", "config:\n  aws:region: eu-west-3\n   labstack:tls: acme\n",
     f"{AT} 3, column 16: a `: ` where no key can start: a line indented deeper than the key above it, or a value "
     "holding `: ` that needs quotes"),
    ("key-without-colon", "config:\n  aws:region: eu-west-3\n  labstack:dnsHost\n  labstack:tls: acme\n",
     f"{AT} 4, column 3: expected `key: value` here: a key lacks its `:`, or a line is indented wrongly"),
    ("open-quote", "config:\n  aws:region: \"eu-west-3\n",
     f"{AT} 3, column 1: found unexpected end of stream while scanning a quoted scalar that starts at line 2"),
    ("list-at-the-top", "- config\n", f"{AT} 1, column 1: expected a map with a `config:` section at the top (as in "
                                      "stacks/Pulumi.paris-batch2.yaml)"),
    ("config-a-list", "config:\n  - aws:region: eu-west-3\n",
     f"{AT} 2, column 3: config: holds a list; it must be a map of `key: value` settings, each on its own line "
     "indented under `config:`"),
    ("config-a-value", "config: eu-west-3\n",
     f"{AT} 1, column 9: config: holds a single value; it must be a map of `key: value` settings, each on its own "
     "line indented under `config:`"),
    ("empty", "", "stacks/Pulumi.x.yaml is empty: it needs a `config:` map of settings; start from "
                  "stacks/Pulumi.paris-batch2.yaml"),
    ("only-comments", "# to do\n", "stacks/Pulumi.x.yaml is empty: it needs a `config:` map of settings; start from "
                                   "stacks/Pulumi.paris-batch2.yaml"),
    ("duplicate-key", "config:\n  aws:region: eu-west-3\n  labstack:tls: acme\n  aws:region: eu-west-1\n",
     f"{AT} 4, column 3: aws:region is given twice (lines 2 and 4); Pulumi refuses a duplicate key: keep one"),
    ("duplicate-nested", "config:\n  labstack:apps:\n    elif:\n      port: 1\n      port: 2\n",
     f"{AT} 5, column 7: labstack:apps.elif.port is given twice (lines 4 and 5); Pulumi refuses a duplicate key: "
     "keep one"),
    ("misspelt-section", "confg:\n  aws:region: eu-west-3\n",
     f"{AT} 1, column 1: confg: is no section of a stack file; did you mean config?"),
    ("unknown-section", "settings:\n  aws:region: eu-west-3\n",
     f"{AT} 1, column 1: settings: is no section of a stack file; Pulumi knows secretsprovider, encryptedkey, "
     "encryptionsalt, config, environment"),
]


@pytest.mark.parametrize("text, line", [case[1:] for case in UNREADABLE], ids=[case[0] for case in UNREADABLE])
def test_an_unreadable_stack_file_is_one_line(text, line):
    with pytest.raises(StackFileError) as caught:
        parse_stack_text(FILE, text)
    assert str(caught.value) == line


def test_pulumis_own_sections_are_allowed():
    read = parse_stack_text(FILE, "secretsprovider: passphrase\nencryptionsalt: v1:abc\nconfig:\n  aws:region: x\n")
    assert read.config == {"aws:region": "x"} and read.warnings == ()


def test_yaml_1_1_forms_stay_text_as_pulumi_reads_them():
    read = parse_stack_text(FILE, "config:\n  labstack:apps:\n    elif:\n      env:\n        DEBUG: on\n"
                                  "        DAY: 2026-01-01\n        AT: 1:20\n        MODE: 0o17\n        N: 12\n"
                                  "        OK: true\n        QUOTED: \"yes\"\n")
    assert read.config["labstack:apps"]["elif"]["env"] == {
        "DEBUG": "on", "DAY": "2026-01-01", "AT": "1:20", "MODE": 15, "N": 12, "OK": True, "QUOTED": "yes"}
    assert read.warnings == (
        "labstack:apps.elif.env.DEBUG = on (stacks/Pulumi.x.yaml, line 5, column 16): Pulumi reads an unquoted on as "
        "the text 'on', not true; write true for a boolean, or quote it \"on\" if the text is meant",)


@pytest.fixture
def stacks(tmp_path, monkeypatch):
    monkeypatch.setattr(labstack.stacks.stackfile, "STACKS_DIR", tmp_path)
    key = tmp_path / "id_ed25519"
    write_private_key(key)
    head = (f"config:\n  aws:region: eu-west-3\n  labstack:serverPem: {key}\n  labstack:sshCidrs: [198.51.100.0/24]\n"
            f"  labstack:apps:\n    elif:\n      image: {PINNED}\n")

    def write(text: str) -> None:
        (tmp_path / "Pulumi.s.yaml").write_text(head + text)
    return write


SECURE = "\n    secure: v1:ciphertextAAAA\n"


def test_secure_values_are_known_key_by_key(stacks):
    stacks(f"  labstack:dashboardPassword:{SECURE}  labstack:appSecrets:\n    elif:\n      API_TOKEN:"
           + SECURE.replace("\n    ", "\n        "))
    offline = read_offline("s")
    assert offline.secret_keys == {"labstack:dashboardPassword", "labstack:appSecrets"}
    assert "ciphertext" not in repr(offline.config)
    assert load("s").proxy.dashboard_password is not None


def test_plain_secrets_in_the_file_are_refused_with_the_command(stacks):
    # API_TOKEN is encrypted, OTHER is not: Pulumi would call the whole key secret; the file says otherwise
    stacks("  labstack:dashboardPassword: correct-horse-battery\n  labstack:appSecrets:\n    elif:\n      API_TOKEN:"
           + SECURE.replace("\n    ", "\n        ") + "      OTHER: plain\n")
    with pytest.raises(ConfigError) as caught:
        load("s")
    assert caught.value.problems == [
        "labstack:appSecrets.elif.API_TOKEN = '[secret]': is in plain text in the stack file: set it encrypted with "
        "`pulumi config set --secret --path 'labstack:appSecrets.elif.API_TOKEN' <value>`",
        "labstack:appSecrets.elif.OTHER = '[secret]': is in plain text in the stack file: set it encrypted with "
        "`pulumi config set --secret --path 'labstack:appSecrets.elif.OTHER' <value>`",
        "labstack:dashboardPassword = '[secret]': is in plain text in the stack file: set it encrypted with "
        "`pulumi config set --secret labstack:dashboardPassword <password>`"]
    assert "correct-horse" not in str(caught.value) and "plain" not in str(caught.value).replace("plain text", "")



def test_a_registry_login_is_encrypted_when_each_password_is(stacks):
    # `--secret --path` encrypts the password alone; the user name beside it stays plain, as Pulumi writes it.
    login = "  labstack:registryAuth:\n    ghcr.io:\n      username: lab-bot\n      password:"
    stacks(login + SECURE.replace("\n    ", "\n        "))
    assert "labstack:registryAuth" in read_offline("s").secret_keys
    assert load("s").registry_auth["ghcr.io"].username == "lab-bot"
    stacks(login + " ghp_plain\n")
    with pytest.raises(ConfigError) as caught:
        load("s")
    assert caught.value.problems == [
        "labstack:registryAuth.ghcr.io.password = '[secret]': the password is in plain text in the stack file: set "
        "it encrypted with `pulumi config set --secret --path 'labstack:registryAuth[\"ghcr.io\"].password' <token>`"]
    assert "ghp_plain" not in str(caught.value)

def test_reading_warnings_reach_the_typed_config(stacks):
    stacks("      env:\n        FEATURE: yes\n")
    assert load("s").warnings == (
        f"labstack:apps.elif.env.FEATURE = yes ({labstack.stacks.stackfile.STACKS_DIR / 'Pulumi.s.yaml'}, line 9, column 18): "
        "Pulumi reads an unquoted yes as the text 'yes', not true; write true for a boolean, or quote it \"yes\" if "
        "the text is meant",)
