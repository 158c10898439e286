"""Today's AWS prices for `invoke cost`: the AWS Pricing API (GetProducts, served from us-east-1), cached on disk for a
day; the built-in table (components/config/prices.py), marked as an estimate, when the API cannot be reached; and
spot prices from EC2's spot price history.

The Pricing API's answer is a list of JSON documents, one per product (SKU), each with its attributes and its terms;
an on-demand price is `terms.OnDemand.<term>.priceDimensions.<dimension>.pricePerUnit.USD` of the dimension whose
unit is the one we price by ("Hrs" for instances, "GB-Mo" for volumes). An instance is priced as labstack runs it:
Linux, shared tenancy, no pre-installed software, capacity status "Used" (not a reservation's unused capacity).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Iterable, Optional

from components.config import prices

PRICING_REGION = "us-east-1"  # the Pricing API is served from us-east-1 (and ap-south-1), for every region's prices
CACHE_SECONDS = 24 * 3600
SPOT_PRODUCT = "Linux/UNIX"


@dataclass(frozen=True)
class Price:
    usd: Optional[float]  # None: neither AWS nor the built-in table knows it
    source: str  # where the number comes from, as the report shows it
    is_estimate: bool


def cache_file() -> Path:
    """The user's cache dir (XDG), not the project: prices are the same for every checkout."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "labstack" / "aws-prices.json"


def pricing_client():
    import boto3
    from botocore.config import Config

    # Short timeouts and few retries: without network the report falls back to the table instead of hanging.
    return boto3.client("pricing", region_name=PRICING_REGION,
                        endpoint_url=os.environ.get("LABSTACK_AWS_ENDPOINT_URL") or None,
                        config=Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 2}))


def instance_filters(region: str, instance_type: str) -> list[dict]:
    terms = {"regionCode": region, "instanceType": instance_type, "operatingSystem": "Linux", "tenancy": "Shared",
             "preInstalledSw": "NA", "capacitystatus": "Used"}
    return [{"Type": "TERM_MATCH", "Field": field, "Value": value} for field, value in terms.items()]


def gp3_filters(region: str) -> list[dict]:
    terms = {"regionCode": region, "productFamily": "Storage", "volumeApiName": "gp3"}
    return [{"Type": "TERM_MATCH", "Field": field, "Value": value} for field, value in terms.items()]


def on_demand_usd(price_list: Iterable[str], unit: str) -> Optional[float]:
    """The on-demand price per `unit` in a GetProducts PriceList. Several matching products with different prices
    (AWS sometimes lists a variant the filters do not tell apart) give the highest: a budget must not undercount."""
    found = []
    for document in price_list:
        product = json.loads(document)
        for term in product.get("terms", {}).get("OnDemand", {}).values():
            for dimension in term.get("priceDimensions", {}).values():
                usd = dimension.get("pricePerUnit", {}).get("USD")
                if dimension.get("unit") == unit and usd is not None and float(usd) > 0:
                    found.append(float(usd))
    return max(found) if found else None


class Pricer:
    """Prices for one report: each asked of the API at most once a day, the table when the API fails (after the
    first failure the API is not asked again in this run, so an offline laptop waits once, not per price)."""

    def __init__(self, client_factory: Callable[[], object] = pricing_client, cache_path: Optional[Path] = None,
                 now: Callable[[], float] = time.time):
        self._client_factory = client_factory
        self._client = None
        self._cache_path = cache_path or cache_file()
        self._now = now
        self.unreachable: Optional[str] = None  # why the API could not be asked, once it failed

    def instance_hourly(self, region: str, instance_type: str) -> Price:
        return self._price(f"instance/{region}/{instance_type}", instance_filters(region, instance_type), "Hrs",
                           lambda: prices.hourly_price(region, instance_type))

    def gp3_gb_month(self, region: str) -> Price:
        return self._price(f"gp3/{region}", gp3_filters(region), "GB-Mo", lambda: prices.ebs_gb_month(region))

    def snapshot_gb_month(self, region: str) -> Price:
        return self._table(prices.snapshot_gb_month(region))

    def public_ipv4_hourly(self, region: str) -> Price:
        return self._table(prices.public_ipv4_hourly(region))

    @staticmethod
    def _table(answer: tuple[Optional[float], bool]) -> Price:
        return Price(answer[0], f"built-in table {prices.prices_as_of()} (estimate)", True)

    def _price(self, key: str, filters: list[dict], unit: str,
               table: Callable[[], tuple[Optional[float], bool]]) -> Price:
        cache = self._read_cache()
        entry = cache.get(key)
        if entry and self._now() - entry["at"] < CACHE_SECONDS:
            return Price(entry["usd"], f"AWS Pricing API, {_day(entry['at'])}", False)
        usd = self._ask(filters, unit)
        if usd is None:
            fallback = self._table(table())
            why = f"; Pricing API: {self.unreachable}" if self.unreachable else "; not in the Pricing API"
            return Price(fallback.usd, fallback.source + why, True)
        cache[key] = {"usd": usd, "at": self._now()}
        self._write_cache(cache)
        return Price(usd, f"AWS Pricing API, {_day(self._now())}", False)

    def _ask(self, filters: list[dict], unit: str) -> Optional[float]:
        if self.unreachable:
            return None
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client = self._client or self._client_factory()
            answer = self._client.get_products(ServiceCode="AmazonEC2", Filters=filters, FormatVersion="aws_v1",
                                               MaxResults=100)
        except (BotoCoreError, ClientError) as error:
            self.unreachable = str(error).splitlines()[0][:160]
            return None
        return on_demand_usd(answer.get("PriceList", []), unit)

    def _read_cache(self) -> dict:
        try:
            return json.loads(self._cache_path.read_text())
        except (OSError, ValueError):  # none yet, or unreadable: ask again
            return {}

    def _write_cache(self, cache: dict) -> None:
        try:
            self._cache_path.parent.mkdir(parents=True, exist_ok=True)
            self._cache_path.write_text(json.dumps(cache, indent=1, sort_keys=True))
        except OSError:  # a read-only home still gets its report, only without the cache
            pass


def _day(epoch: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


# --- spot -----------------------------------------------------------------------------------------------------------

def spot_history(ec2, instance_type: str, zone: str, start: datetime, end: datetime) -> list[tuple[datetime, float]]:
    """The spot prices of a type in a zone that were in effect from `start` to `end`, oldest first (AWS keeps 90
    days; each price holds until the next one)."""
    rows = []
    paginator = ec2.get_paginator("describe_spot_price_history")
    for page in paginator.paginate(InstanceTypes=[instance_type], ProductDescriptions=[SPOT_PRODUCT],
                                   AvailabilityZone=zone, StartTime=start, EndTime=end):
        rows += [(item["Timestamp"], float(item["SpotPrice"])) for item in page["SpotPriceHistory"]
                 if item.get("AvailabilityZone", zone) == zone]
    return sorted(set(rows))


def spot_cost(history: list[tuple[datetime, float]], intervals: Iterable[tuple[datetime, datetime]]) -> float:
    """USD for running over `intervals` at the prices in effect: each price from its time until the next one; before
    the first known price, the first known price (history older than AWS keeps is gone)."""
    total = 0.0
    for start, end in intervals:
        for index, (since, usd) in enumerate(history):
            until = history[index + 1][0] if index + 1 < len(history) else end
            since = start if index == 0 else since
            overlap = (min(until, end) - max(since, start)) / timedelta(hours=1)
            if overlap > 0:
                total += overlap * usd
    return total
