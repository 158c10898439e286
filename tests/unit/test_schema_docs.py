"""The configuration reference's tables and stacks/labstack.schema.json are generated from the schema's models: a stale copy
fails here, and every stack file passes the schema editors check it against."""
from __future__ import annotations

import json

import pytest
import yaml
from jsonschema import Draft202012Validator

from components.config import docs

REGENERATE = "regenerate with `venv/bin/python -m components.config.docs`"
STACK_FILES = sorted((docs.PROJECT_DIR / "stacks").glob("Pulumi.*.yaml"))


def test_the_configuration_reference_is_current():
    page = docs.PAGE.read_text()
    assert docs.page_with_region(page) == page, f"the tables of {docs.PAGE} are stale: {REGENERATE}"


def test_json_schema_is_current():
    assert docs.JSON_SCHEMA.read_text() == docs.json_schema_text(), f"{docs.JSON_SCHEMA} is stale: {REGENERATE}"


def test_the_reference_shows_defaults_as_the_models_hold_them():
    region = docs.page_region()
    for row in ("| `labstack:storageGb` | `32` |", "| `labstack:ingressPorts` | `[22, 80, 443]` |",
                "| `labstack:serverName` | the stack name |", "| `aws:region` | (required) |",
                "| `labstack:logViewer` | `false` |", "| `image` | (required) |", "| `postgres` | `true` |",
                "| `labstack:tags` | — |"):
        assert row in region, row


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(docs.JSON_SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.mark.parametrize("path", STACK_FILES, ids=[p.name for p in STACK_FILES])
def test_stack_files_pass_the_editor_schema(validator, path):
    assert [error.message for error in validator.iter_errors(yaml.safe_load(path.read_text()))] == []


def test_example_stack_points_editors_at_the_schema():
    first_line = (docs.PROJECT_DIR / "stacks" / "Pulumi.paris-batch2.yaml").read_text().splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=./labstack.schema.json"


@pytest.mark.parametrize("config, where", [
    ({"labstack:instanceTyp": "t3.micro"}, []),
    ({"labstack:storageGb": "lots"}, ["labstack:storageGb"]),
    ({"labstack:storageGb": 4}, ["labstack:storageGb"]),
    ({"labstack:desiredState": "paused"}, ["labstack:desiredState"]),
    ({"labstack:network": "vpc-123"}, ["labstack:network"]),
    ({"labstack:apps": {"Elif": {"image": "x"}}}, ["labstack:apps"]),
    ({"labstack:apps": {"elif": {"imgae": "x"}}}, ["labstack:apps"]),
    ({"labstack:apps": {"elif": {"image": "x", "postDeploy": {"path": "/a", "command": "b"}}}}, ["labstack:apps"]),
    ({"labstack:existingServer": {"host": "lab.example.org"}}, ["labstack:existingServer"]),
])
def test_editor_schema_refuses_what_the_program_refuses(validator, config, where):
    errors = list(validator.iter_errors({"config": config}))
    assert [list(error.path)[1:] for error in errors] == [where], [error.message for error in errors]


def test_editor_schema_takes_what_pulumi_writes(validator):
    written = {"encryptionsalt": "v1:abc", "config": {
        "aws:region": "eu-west-3", "aws:profile": "lab",  # another provider's key is not ours to refuse
        "labstack:storageGb": "32", "labstack:logViewer": "True", "labstack:ingressPorts": "22,443",
        "labstack:dashboardPassword": {"secure": "v1:ciphertextAAAA"},
        "labstack:appSecrets": {"elif": {"API_TOKEN": {"secure": "v1:ciphertextBBBB"}}},
        "labstack:apps": {"elif": {"image": "x", "port": "5000", "postDeploy": {"command": "python launch.py"}}}}}
    assert [error.message for error in validator.iter_errors(written)] == []
