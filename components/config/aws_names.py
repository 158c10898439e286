"""The AWS regions and EC2 instance types that exist, known offline, so a typo is caught before `pulumi up`.

Regions come from botocore's endpoints data (installed with boto3, read as a file: botocore itself is not imported).
Instance types come from components/config/data/instance_types.txt, generated from botocore's EC2 model by
`python -m components.config.aws_names` (regenerate it after upgrading boto3: AWS adds types every few months).
"""
from __future__ import annotations

import difflib
import gzip
import importlib.util
import json
from functools import lru_cache
from pathlib import Path
from typing import Optional

INSTANCE_TYPES_FILE = Path(__file__).resolve().parent / "data" / "instance_types.txt"


def _botocore_data(name: str) -> Path:
    spec = importlib.util.find_spec("botocore")
    if spec is None or spec.origin is None:
        raise RuntimeError("botocore is not installed: install requirements.txt")
    return Path(spec.origin).parent / "data" / name


def _read_json(path: Path) -> dict:
    gz = path.with_name(path.name + ".gz")
    return json.loads(gzip.decompress(gz.read_bytes()) if gz.exists() else path.read_bytes())


@lru_cache(maxsize=1)
def known_regions() -> frozenset[str]:
    partitions = _read_json(_botocore_data("endpoints.json"))["partitions"]
    return frozenset(region for partition in partitions for region in partition["regions"])


@lru_cache(maxsize=1)
def known_instance_types() -> frozenset[str]:
    return frozenset(INSTANCE_TYPES_FILE.read_text().split())


def did_you_mean(value: str, known: frozenset[str]) -> Optional[str]:
    found = difflib.get_close_matches(value, sorted(known), n=1, cutoff=0.7)
    return found[0] if found else None


def botocore_instance_types() -> list[str]:
    """Every instance type botocore's EC2 model names (the source of the shipped list)."""
    models = sorted(_botocore_data("ec2").iterdir())
    return sorted(_read_json(models[-1] / "service-2.json")["shapes"]["InstanceType"]["enum"])


if __name__ == "__main__":
    INSTANCE_TYPES_FILE.write_text("\n".join(botocore_instance_types()) + "\n")
    print(f"wrote {INSTANCE_TYPES_FILE}")
