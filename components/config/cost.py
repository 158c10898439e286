"""Money settings of a stack: `labstack:spot` (run the stack's instances as spot instances) and `labstack:budget`
(an hourly ceiling `invoke check` and `pulumi up` enforce, and a total the server's watcher stops at).

The hourly check runs offline, priced from the built-in table (components/config/prices.py): the instances' price,
head and workers; a spot instance counts at its cap (maxPrice, else the on-demand price AWS caps spot at), so a stack
that passes can never cost more per hour than its budget, whatever the spot market does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Optional, Union

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from components.config.base import Settings
from components.config.prices import (HOURS_PER_MONTH, ebs_gb_month, hourly_price, prices_as_of,
                                      public_ipv4_hourly)
from components.config.values import YAML11_BOOLEANS, problem

SPOT_FIX = "expected true, false or {maxPrice: <USD per hour>}, e.g. `pulumi config set labstack:spot true`"
# Tags the program sets on each resource when it creates it (components/aws/node.py), with ignore_changes, so the
# price a resource was made at stays its price: `invoke cost` totals the past with it, whatever AWS charges later.
HOURLY_TAG = "labstack:hourly-usd"
GB_MONTH_TAG = "labstack:gb-month-usd"


def _usd(value: Any) -> float:
    """A positive amount of dollars, as YAML's number or `pulumi config set`'s text."""
    if value is None or value == "":
        raise problem("expected an amount in USD such as 3.0")
    try:
        amount = float(str(value).strip().lstrip("$"))
    except ValueError:
        raise problem("expected an amount in USD such as 3.0") from None
    if not 0 < amount < 1_000_000:
        raise problem("must be more than 0 (USD)")
    return amount


USD = Annotated[float, BeforeValidator(_usd, json_schema_input_type=Union[float, str])]


class SpotSettings(Settings):
    """A persistent spot request whose interruption stops the instance (disks and address stay)."""

    shape_fix: ClassVar[str] = SPOT_FIX

    max_price: Optional[USD] = Field(
        None, description="the most you pay per instance-hour, USD (default: the on-demand price, AWS's cap)")


def _spot(value: Any) -> Any:
    """`true` is spot at up to the on-demand price, `false` (or unset) on-demand, a map spot with its settings."""
    if isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in ("true", "false")):
        return {} if str(value).strip().lower() == "true" else None
    if isinstance(value, str) and value.strip().lower() in YAML11_BOOLEANS:
        raise problem(f"{SPOT_FIX}: Pulumi reads `{value}` as text, not a boolean")
    if value is not None and not isinstance(value, dict):
        raise problem(SPOT_FIX)
    return value


BOOLEAN_TEXT = Annotated[str, Field(pattern="^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$")]  # `pulumi config set`
Spot = Annotated[Optional[SpotSettings], BeforeValidator(_spot, json_schema_input_type=Union[bool, BOOLEAN_TEXT,
                                                                                              SpotSettings])]


class BudgetSettings(Settings):
    """What the stack may cost."""

    shape_fix: ClassVar[str] = "expected a map such as {hourly: 3.0, total: 500}"

    hourly: Optional[USD] = Field(
        None, description="USD per hour for all the stack's instances (head and workers; spot at its cap): "
                          "`invoke check` and `pulumi up` refuse a stack above it")
    total: Optional[USD] = Field(
        None, description="USD since launch: the server's watcher stops the instances when the spend reaches it; "
                          "`invoke cost` warns at 50% and 80%")


@dataclass(frozen=True)
class HourlyPrice:
    """The offline price of a stack's instances per hour: the total, one line per instance type, and the types the
    table does not know (then the total is a floor and a budget cannot be checked offline)."""

    usd: float
    parts: tuple[str, ...]
    unknown: tuple[str, ...]

    def described(self) -> str:
        return f"${self.usd:.4f}/h (" + " + ".join(self.parts) + f"; AWS list prices of {prices_as_of()})"


def instances_hourly(region: str, instance_types: list[str], spot: Optional[SpotSettings]) -> HourlyPrice:
    """What the instances cost per hour at most: on-demand, or spot at its cap."""
    total, parts, unknown = 0.0, [], []
    for name in dict.fromkeys(instance_types):
        count = instance_types.count(name)
        price, _ = hourly_price(region, name, spot=spot is not None, max_price=spot.max_price if spot else None)
        if price is None:
            unknown.append(name)
            continue
        total += count * price
        kind = ("spot at maxPrice" if spot.max_price is not None else "spot, capped at on-demand") if spot else \
            "on-demand"
        parts.append(f"{count} x {name} at ${price:.4f} {kind}")
    return HourlyPrice(round(total, 5), tuple(parts), tuple(unknown))


def over_hourly_budget(region: str, instance_types: list[str], spot: Optional[SpotSettings],
                       budget: Optional[BudgetSettings]) -> Optional[PydanticCustomError]:
    """The problem of a stack whose instances cost more per hour than labstack:budget.hourly."""
    if budget is None or budget.hourly is None or not region:
        return None
    price = instances_hourly(region, instance_types, spot)
    if price.usd <= budget.hourly:
        return None
    return problem(f"the stack's instances cost {price.described()}, above this budget: choose a smaller "
                   "labstack:instanceType (or fewer or smaller workers), set labstack:spot with a maxPrice, or raise "
                   "labstack:budget.hourly")


def unpriced_warning(region: str, instance_types: list[str], spot: Optional[SpotSettings],
                     budget: Optional[BudgetSettings]) -> Optional[str]:
    """A budget that cannot be checked offline: the built-in table lacks the type or the region."""
    if budget is None or budget.hourly is None or not region:
        return None
    unknown = instances_hourly(region, instance_types, spot).unknown
    if not unknown:
        return None
    return (f"labstack:budget.hourly: no built-in price for {', '.join(unknown)} in {region}, so the hourly budget "
            "is not checked before `pulumi up`; `invoke cost -s <stack>` prices it from the AWS Pricing API once "
            "it runs")


def spot_with_apps_problem(apps: Any) -> PydanticCustomError:
    return problem(f"this stack serves apps ({', '.join(apps)}): a spot interruption stops the server in the middle "
                   "of participants' sessions; run experiment servers on-demand (remove labstack:spot) and keep spot "
                   "for cluster and job stacks without apps")


def recorded_price_tags(region: str, instance_type: str, spot: Optional[SpotSettings]) -> dict[str, str]:
    """The price tag an instance is created with: its hourly price at creation and the type it was for (a resized
    instance keeps the tag, and `invoke cost` sees it no longer fits). On-demand; for spot its cap, and `invoke cost`
    uses the spot price history instead. No tag when the table does not know the price."""
    price, _ = hourly_price(region, instance_type, spot=spot is not None,
                            max_price=spot.max_price if spot else None)
    return {HOURLY_TAG: f"{price:.5f} {instance_type}"} if price is not None else {}


def recorded_volume_tags(region: str) -> dict[str, str]:
    """The gp3 price per GB-month an EBS volume is created with."""
    price, _ = ebs_gb_month(region)
    return {GB_MONTH_TAG: f"{price:.5f}"} if price is not None else {}


def recorded_address_tags(region: str) -> dict[str, str]:
    """The public IPv4 price per hour an Elastic IP is allocated with."""
    price, _ = public_ipv4_hourly(region)
    return {HOURLY_TAG: f"{price:.5f}"} if price is not None else {}


def stack_instance_types(instance_type: str, cluster: Any) -> list[str]:
    """The type of every instance the stack makes: the head, then the workers of labstack:cluster."""
    workers = getattr(cluster, "workers", 0) if cluster is not None else 0
    return [instance_type] + [getattr(cluster, "worker_type", None) or instance_type] * workers


def watcher_budget_env(cfg: Any) -> dict[str, str]:
    """HOURLY_PRICE and BUDGET_TOTAL for the server's watcher, which stops the stack when the spend since launch
    reaches labstack:budget.total. HOURLY_PRICE is what the running stack costs per hour: its instances (spot at its
    cap, so the projection errs early, never late), each node's public IPv4 and root disk. Empty without a total, or
    when the built-in table cannot price an instance (`invoke check` warns about that)."""
    budget = cfg.budget
    if budget is None or budget.total is None or not cfg.region:
        return {}
    cluster = getattr(cfg, "cluster", None)
    types = stack_instance_types(cfg.instance_type, cluster)
    instances = instances_hourly(cfg.region, types, cfg.spot)
    address, _ = public_ipv4_hourly(cfg.region)
    disk, _ = ebs_gb_month(cfg.region)
    if instances.unknown or address is None or disk is None:
        return {}
    worker_gb = getattr(cluster, "worker_storage_gb", None) or cfg.storage_gb
    storage_gb = cfg.storage_gb + worker_gb * (len(types) - 1)
    hourly = instances.usd + address * len(types) + disk * storage_gb / HOURS_PER_MONTH
    return {"HOURLY_PRICE": f"{hourly:.5f}", "BUDGET_TOTAL": f"{budget.total:.2f}"}
