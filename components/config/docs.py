"""The configuration reference's tables (docs/configuration.md) and the editors' JSON schema
(stacks/labstack.schema.json), generated from the schema's models so a key's meaning and default are written once.
`python -m components.config.docs` rewrites both; a test (and `mkdocs build --strict` of the docs site) fails when
either is stale."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from components.config.apps import AppSettings
from components.config.cluster import ClusterSettings
from components.config.formats import NAMESPACE, RESERVED_ENV
from components.config.messages import as_invoke
from components.config.schema import StackFile
from components.config.values import Secure, Shown

PROJECT_DIR = Path(__file__).resolve().parents[2]
PAGE = PROJECT_DIR / "docs" / "configuration.md"
JSON_SCHEMA = PROJECT_DIR / "stacks" / "labstack.schema.json"
REGION = re.compile(r"(<!-- config:start -->\n)(.*?)(<!-- config:end -->)", re.S)


def _shown_default(field: FieldInfo) -> str:
    shown = next((item.text for item in field.metadata if isinstance(item, Shown)), None)
    if shown:
        return shown
    default = field.default
    if default is PydanticUndefined:
        return "(required)"
    if default is None or default == {}:
        return "—"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, tuple):
        return f"`[{', '.join(map(str, default))}]`"
    return f"`{default}`"


def _table(model: type[BaseModel], heading: str) -> list[str]:
    rows = [f"| {heading} | default | meaning |", "|---|---|---|"]
    rows += [f"| `{field.alias or name}` | {_shown_default(field)} | {as_invoke(field.description or '')} |"
             for name, field in model.model_fields.items()]
    return rows


def page_region() -> str:
    """The text between `<!-- config:start -->` and `<!-- config:end -->`."""
    env = ", ".join(f"`{name}`" for name in RESERVED_ENV[:-1])
    lines = [*_table(StackFile, "key"), "",
             "Settings of one app (`labstack:apps.<name>`; names are lower-case letters, digits and dashes):", "",
             *_table(AppSettings, "setting"), "",
             "Settings of a cluster (`labstack:cluster`; [Clusters](clusters.md)):", "",
             *_table(ClusterSettings, "setting"), "",
             f"Every app container gets {env} and `{RESERVED_ENV[-1]}=/data` (a host",
             "directory that survives redeploys)."]
    return "\n".join(lines) + "\n"


def _tidy(node: Any) -> Any:
    """Drop pydantic's generated titles and null defaults: noise in an editor's hover."""
    if isinstance(node, dict):
        return {key: _tidy(value) for key, value in node.items()
                if key != "title" and not (key == "default" and value is None)}
    if isinstance(node, list):
        return [_tidy(item) for item in node]
    return node


def json_schema() -> dict:
    """The whole stack file: `config:` with the full keys; every value may be `{secure: …}` as Pulumi writes it."""
    config = _tidy(StackFile.model_json_schema(by_alias=True, mode="validation"))
    definitions = config.pop("$defs", {})
    definitions.setdefault("Secure", _tidy(TypeAdapter(Secure).json_schema()))
    properties = {}
    for key, schema in config["properties"].items():
        described = {name: schema.pop(name) for name in ("description", "default") if name in schema}
        shapes = schema["anyOf"] if list(schema) == ["anyOf"] else [schema]
        properties[key] = {**described, "anyOf": [*shapes, {"$ref": "#/$defs/Secure"}]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "labstack.schema.json",
        "title": "labstack stack file (stacks/Pulumi.<stack>.yaml)",
        "description": "Generated from components/config/schema.py by `python -m components.config.docs`.",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "description": config.get("description", ""),
                "properties": properties,
                # Other providers' keys (aws:profile) are theirs; an unknown labstack: key is a typo.
                "propertyNames": {"anyOf": [{"enum": list(properties)},
                                            {"not": {"pattern": f"^{NAMESPACE}:"}}]},
            },
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
            "encryptionsalt": {"type": "string"},
        },
        "$defs": definitions,
    }


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def page_with_region(page: str) -> str:
    if not REGION.search(page):
        raise ValueError(f"{PAGE} has no <!-- config:start --> ... <!-- config:end --> region")
    return REGION.sub(lambda match: match.group(1) + page_region() + match.group(3), page, count=1)


def main() -> None:
    PAGE.write_text(page_with_region(PAGE.read_text()))
    JSON_SCHEMA.write_text(json_schema_text())
    print(f"wrote the config tables in {PAGE.relative_to(PROJECT_DIR)} and {JSON_SCHEMA.relative_to(PROJECT_DIR)}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
