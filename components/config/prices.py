"""What AWS charges, from the built-in table components/config/data/prices.json: estimates (list prices of the date
in PRICES_AS_OF), known offline. The one place prices are looked up offline: `invoke check` and the program's budget
check, the price the program records on each resource it creates, `invoke list.types`/`list.instances`, and
labstack/cost/pricing.py when the AWS Pricing API cannot be reached.

Every answer is `(usd, is_estimate)`; usd is None when the table does not know the type or region (a report shows
"?", a budget check says it could not check). The table has no spot prices: a spot hour costs at most the spot
request's maxPrice, or without one the on-demand price (AWS's default cap), so that cap is the offline spot answer.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Optional

PRICES_FILE = Path(__file__).resolve().parent / "data" / "prices.json"
HOURS_PER_MONTH = 730  # AWS bills GB-months over 730 hours


@lru_cache(maxsize=1)
def _table() -> dict:
    return json.loads(PRICES_FILE.read_text())


def prices_as_of() -> str:
    return _table()["asOf"]


def _regional(region: str, us_east_1: Optional[float]) -> Optional[float]:
    factor = _table()["regionFactor"].get(region)
    return None if us_east_1 is None or factor is None else round(us_east_1 * factor, 5)


def hourly_price(region: str, instance_type: str, spot: bool = False,
                 max_price: Optional[float] = None) -> tuple[Optional[float], bool]:
    """An instance's price per hour in USD. With `spot`, the most a spot hour costs: `max_price` when the request
    names one, else the on-demand price."""
    if spot and max_price is not None:
        return max_price, True
    return _regional(region, _table()["instanceHourlyUsEast1"].get(instance_type)), True


def ebs_gb_month(region: str) -> tuple[Optional[float], bool]:
    """gp3 storage per GB-month (labstack's volumes use gp3's free baseline IOPS and throughput: only size costs)."""
    return _table()["ebsGp3GbMonth"].get(region), True


def snapshot_gb_month(region: str) -> tuple[Optional[float], bool]:
    """EBS snapshot (standard tier) per GB-month of stored data."""
    return _table()["snapshotGbMonth"].get(region), True


def public_ipv4_hourly(region: str) -> tuple[Optional[float], bool]:
    """A public IPv4 address (an Elastic IP, attached or not) per hour."""
    return (_table()["publicIpv4Hourly"] if region in _table()["regionFactor"] else None), True
