"""Stack files read as Pulumi reads them (yaml.v3, YAML 1.2): what cannot be read is one line naming the file, line
and column; what Pulumi would read differently from PyYAML is refused or warned about; secure values are known."""
from __future__ import annotations

import pytest

import labstack.stacks.stackfile
from components.config import ConfigError
from labstack.stacks.stackfile import PROJECT_DIR, StackFileError, load, parse_stack_text, read_offline
from tests.unit.helpers import digest, write_private_key

FILE = PROJECT_DIR / "stacks" / "Pulumi.x.yaml"
AT = "stacks/Pulumi.x.yaml, line"
PINNED = "registry.example.org/lab/elif@sha256:" + digest("0f")

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
                                  "        AT: 1:20\n        MODE: 0o17\n        N: 12\n"
                                  "        OK: true\n        QUOTED: \"yes\"\n")
    assert read.config["labstack:apps"]["elif"]["env"] == {
        "DEBUG": "on", "AT": "1:20", "MODE": 15, "N": 12, "OK": True, "QUOTED": "yes"}
    assert read.warnings == (
        "labstack:apps.elif.env.DEBUG = on (stacks/Pulumi.x.yaml, line 5, column 16): Pulumi reads an unquoted on as "
        "the text 'on', not true; write true for a boolean, or quote it \"on\" if the text is meant",
        "labstack:apps.elif.env.MODE = 0o17 (stacks/Pulumi.x.yaml, line 7, column 15): Pulumi reads an unquoted 0o17 "
        "as the number 15; quote it \"0o17\" if the text is meant")


@pytest.fixture
def stacks(tmp_path, monkeypatch):
    monkeypatch.setattr(labstack.stacks.stackfile, "STACKS_DIR", tmp_path)
    key = tmp_path / "id_ed25519"
    write_private_key(key)
    head = (f"config:\n  aws:region: eu-west-3\n  labstack:serverPem: {key}\n  labstack:sshCidrs: [100.64.0.0/24]\n"
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
        "`invoke config -s s --secret --set 'labstack:appSecrets.elif.API_TOKEN'=<value>`",
        "labstack:appSecrets.elif.OTHER = '[secret]': is in plain text in the stack file: set it encrypted with "
        "`invoke config -s s --secret --set 'labstack:appSecrets.elif.OTHER'=<value>`",
        "labstack:dashboardPassword = '[secret]': is in plain text in the stack file: set it encrypted with "
        "`invoke config -s s --secret --set labstack:dashboardPassword=<password>`"]
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
        "it encrypted with `invoke config -s s --secret --set 'labstack:registryAuth[\"ghcr.io\"].password'=<token>`"]
    assert "ghp_plain" not in str(caught.value)

def test_reading_warnings_reach_the_typed_config(stacks):
    stacks("      env:\n        FEATURE: yes\n")
    assert load("s").warnings == (
        f"labstack:apps.elif.env.FEATURE = yes ({labstack.stacks.stackfile.STACKS_DIR / 'Pulumi.s.yaml'}, line 9, column 18): "
        "Pulumi reads an unquoted yes as the text 'yes', not true; write true for a boolean, or quote it \"yes\" if "
        "the text is meant",)


# --- read as Pulumi reads them: components/config/pulumi_yaml.py cites the Pulumi and yaml.v3 source of each rule ---

@pytest.mark.parametrize("written, meant", [
    ("01234", 668),  # yaml.v3 still reads YAML 1.1's leading-zero octal
    ("0b101", 5), ("0o17", 15), ("0x1F", 31), ("1_000", 1000), ("-0b11", -3),
    ("08", 8),  # no octal: yaml.v3's float, written back as 8
    ("1e3", 1000), ("1.10", 1.1), (".5", 0.5), ("1.5e30", 1.5e30),
    ("2026-01-01", "2026-01-01 00:00:00 +0000 UTC"),  # Go's Time.String() of yaml.v3's timestamp
    ("2026-1-2 3:04:05.50", "2026-01-02 03:04:05.5 +0000 UTC"), ("2026-01-02T03:04:05Z", "2026-01-02 03:04:05 +0000 UTC"),
    ("2026-13-01", "2026-13-01"), ("1:20", "1:20"), ("yes", "yes"), ("0x", "0x"), ("._5", "._5"), ("~", None),
    ("True", True), ("12", 12),
])
def test_unquoted_values_are_what_pulumi_hands_the_program(written, meant):
    read = parse_stack_text(FILE, f"config:\n  labstack:tags:\n    v: {written}\n  labstack:creator: {written}\n")
    assert read.config["labstack:tags"]["v"] == meant and type(read.config["labstack:tags"]["v"]) is type(meant)
    assert read.config["labstack:creator"] == meant


def test_a_number_pulumi_reads_differently_from_its_text_is_warned_about():
    read = parse_stack_text(FILE, "config:\n  labstack:apps:\n    elif:\n      env:\n        ZIP: 01234\n"
                                  "        SINCE: 2026-01-01\n        N: 12\n        Q: \"01234\"\n")
    assert read.config["labstack:apps"]["elif"]["env"] == {
        "ZIP": 668, "SINCE": "2026-01-01 00:00:00 +0000 UTC", "N": 12, "Q": "01234"}
    assert read.warnings == (
        "labstack:apps.elif.env.ZIP = 01234 (stacks/Pulumi.x.yaml, line 5, column 14): Pulumi reads an unquoted 01234 "
        "as the number 668; quote it \"01234\" if the text is meant",
        "labstack:apps.elif.env.SINCE = 2026-01-01 (stacks/Pulumi.x.yaml, line 6, column 16): Pulumi reads an unquoted "
        "2026-01-01 as a timestamp and hands the program the text '2026-01-01 00:00:00 +0000 UTC'; quote it "
        "\"2026-01-01\" if the text is meant")


def test_a_time_with_a_zone_offset_is_refused_with_quote_it():
    with pytest.raises(StackFileError) as caught:
        parse_stack_text(FILE, "config:\n  labstack:tags:\n    since: 2026-01-02T03:04:05+02:00\n")
    assert str(caught.value) == (
        "stacks/Pulumi.x.yaml, line 3, column 12: labstack:tags.since = 2026-01-02T03:04:05+02:00: Pulumi reads an "
        "unquoted 2026-01-02T03:04:05+02:00 as a time named after the time zone of the machine that runs `pulumi`; "
        "quote it \"2026-01-02T03:04:05+02:00\"")


def test_merge_keys_are_read_as_yaml_v3_reads_them():
    read = parse_stack_text(FILE, (
        "defaults: &defaults\n  workers: 1\n  port: 8000\n"  # a place for anchors: Pulumi ignores the section
        "config:\n  labstack:apps:\n    a:\n      <<: *defaults\n      port: 9000\n"
        "    b:\n      <<: [{workers: 2}, *defaults]\n"))
    assert read.config["labstack:apps"] == {"a": {"workers": 1, "port": 9000}, "b": {"workers": 2, "port": 8000}}


def test_a_tab_after_a_value_is_blank_space_as_in_libyaml():
    read = parse_stack_text(FILE, "config:\n  labstack:instanceType: t3.micro\t\n  labstack:tags: {a: b\t, c: x\ty}\n"
                                  "  labstack:creator: ann\t# the lab's\n")
    assert read.config == {"labstack:instanceType": "t3.micro", "labstack:tags": {"a": "b", "c": "x\ty"},
                           "labstack:creator": "ann"}


def test_a_key_without_a_namespace_is_the_projects():
    read = parse_stack_text(FILE, "config:\n  instanceType: t3.micro\n  cluster: {workers: 600}\n"
                                  "  labstack:config:tls: internal\n  aws:region: eu-west-3\n")
    assert read.config == {"labstack:instanceType": "t3.micro", "labstack:cluster": {"workers": 600},
                           "labstack:tls": "internal", "aws:region": "eu-west-3"}


@pytest.mark.parametrize("text, line", [
    ("config:\n  labstack:instanceType: t3.small\n  instanceType: t3.micro\n",
     f"{AT} 3, column 3: labstack:instanceType is given twice, as labstack:instanceType and instanceType (lines 2 and "
     "3); Pulumi reads a key without a namespace as the project's (labstack:) and keeps only one of them: keep one"),
    ("config:\n  labstack:a:b: x\n",
     f"{AT} 2, column 3: could not parse labstack:a:b as a configuration key (configuration keys should be of the "
     "form `<namespace>:<name>`); Pulumi refuses the file"),
])
def test_keys_pulumi_cannot_read_one_way_are_one_line(text, line):
    with pytest.raises(StackFileError) as caught:
        parse_stack_text(FILE, text)
    assert str(caught.value) == line


def test_a_namespace_less_setting_is_judged_as_the_projects(stacks):
    stacks("  cluster: {workers: 600}\n")
    with pytest.raises(ConfigError) as caught:
        load("s")
    assert caught.value.problems == ["labstack:cluster.workers = '600': must be between 0 and 500"]


def test_a_byte_that_is_no_utf8_is_one_line_naming_its_offset(stacks):
    (labstack.stacks.stackfile.STACKS_DIR / "Pulumi.s.yaml").write_bytes(b"\xef\xbb\xbfconfig:\n  labstack:creator: Ren\xe9\n")
    with pytest.raises(StackFileError) as caught:
        read_offline("s")
    assert str(caught.value) == (
        f"{labstack.stacks.stackfile.STACKS_DIR / 'Pulumi.s.yaml'}, byte offset 34 (line 2): byte 0xe9 is not UTF-8, which Pulumi "
        "reads stack files as; save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)")
