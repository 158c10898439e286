"""labstack:spot and labstack:budget: the stack file's settings, the hourly budget refused before anything is
created, the spot request and the price tags the program declares (under mocks, preview=False)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from components.config import ConfigError, load_stack_config
from components.config.cost import (GB_MONTH_TAG, HOURLY_TAG, instances_hourly, stack_instance_types,
                                    watcher_budget_env)
from components.config.prices import ebs_gb_month, hourly_price, public_ipv4_hourly, snapshot_gb_month
from labstack.stacks.offline import FakeAws, evaluate
from tests.unit.helpers import base_config, digest, registered

INSTANCE = "aws:ec2/instance:Instance"
EIP = "aws:ec2/eip:Eip"
APP = {"elif": {"image": "registry.example.org/lab/elif@sha256:" + digest("ab")}}


def problems(pem, **settings) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        load_stack_config(base_config(pem, **settings), "paris-batch2")
    return refused.value.problems


def test_builtin_prices_are_regional_estimates():
    # us-east-1 list prices; Paris is us-east-1 times Paris's m5.large ratio (0.112 / 0.096).
    assert hourly_price("us-east-1", "m7i.large") == (0.1008, True)
    assert hourly_price("eu-west-3", "m7i.large") == (0.1176, True)
    assert hourly_price("eu-west-3", "m7i.large", spot=True) == (0.1176, True)  # spot's cap: on-demand
    assert hourly_price("eu-west-3", "m7i.large", spot=True, max_price=0.04) == (0.04, True)
    assert hourly_price("eu-west-3", "u-24tb1.224xlarge") == (None, True)
    assert hourly_price("xx-mars-1", "m7i.large") == (None, True)
    assert (ebs_gb_month("eu-west-3"), snapshot_gb_month("us-east-1"), public_ipv4_hourly("eu-west-3")) == (
        (0.0928, True), (0.05, True), (0.005, True))


def test_spot_and_budget_settings_reach_the_stack_config(pem):
    cfg = load_stack_config(base_config(pem, spot="true", budget={"hourly": "3", "total": 500}), "paris-batch2")
    assert cfg.spot is not None and cfg.spot.max_price is None
    assert (cfg.budget.hourly, cfg.budget.total) == (3.0, 500.0)
    cfg = load_stack_config(base_config(pem, spot={"maxPrice": "$0.05"}), "paris-batch2")
    assert cfg.spot.max_price == 0.05 and cfg.budget is None
    for off in (False, "false", None):
        assert load_stack_config(base_config(pem, spot=off), "paris-batch2").spot is None


def test_bad_spot_and_budget_values_are_one_line_each(pem):
    assert problems(pem, spot="yes", budget={"hourly": -1, "total": "lots", "monthly": 3}) == [
        "labstack:spot = 'yes': expected true, false or {maxPrice: <USD per hour>}, e.g. `invoke config -s paris-batch2 "
        "--set labstack:spot=true`: Pulumi reads `yes` as text, not a boolean",
        "labstack:budget.hourly = '-1': must be more than 0 (USD)",
        "labstack:budget.total = 'lots': expected an amount in USD such as 3.0",
        "labstack:budget.monthly = '3': unknown setting; known: hourly, total",
    ]
    assert problems(pem, spot={"maxprice": 0.05}) == [
        "labstack:spot.maxprice = '0.05': unknown setting; did you mean maxPrice?"]
    assert problems(pem, spot=[1]) == [
        "labstack:spot = '[1]': expected true, false or {maxPrice: <USD per hour>}, e.g. `invoke config -s paris-batch2 "
        "--set labstack:spot=true`"]


def test_an_hourly_budget_below_the_instances_price_is_refused_naming_price_and_key(pem):
    assert problems(pem, budget={"hourly": 0.1}) == [
        "labstack:budget.hourly = '0.1': the stack's instances cost $0.1176/h (1 x m7i.large at $0.1176 on-demand; "
        "AWS list prices of 2025-06), above this budget: choose a smaller labstack:instanceType (or fewer or smaller "
        "workers), set labstack:spot with a maxPrice, or raise labstack:budget.hourly"]
    # Spot without maxPrice counts at its cap, the on-demand price: still over.
    assert "1 x m7i.large at $0.1176 spot, capped at on-demand" in problems(pem, spot=True, budget={"hourly": 0.1})[0]
    # A maxPrice under the budget, a smaller type, or a budget at the price pass.
    load_stack_config(base_config(pem, spot={"maxPrice": 0.05}, budget={"hourly": 0.1}), "paris-batch2")
    load_stack_config(base_config(pem, instanceType="t3.small", budget={"hourly": 0.1}), "paris-batch2")
    load_stack_config(base_config(pem, budget={"hourly": 0.1176}), "paris-batch2")


def test_a_type_the_table_lacks_is_a_warning_not_a_pass_in_silence(pem):
    cfg = load_stack_config(base_config(pem, instanceType="x2iedn.xlarge", budget={"hourly": 1}), "paris-batch2")
    assert cfg.warnings == (
        "labstack:budget.hourly: no built-in price for x2iedn.xlarge in eu-west-3, so the hourly budget is not "
        "checked before `invoke up -s paris-batch2`; `invoke cost -s <stack>` prices it from the AWS Pricing API once it runs",)


def test_spot_is_refused_for_a_stack_with_apps(pem):
    assert problems(pem, spot={"maxPrice": 0.05}, apps=APP) == [
        "labstack:spot = '{\"maxPrice\": 0.05}': this stack serves apps (elif): a spot interruption stops the server "
        "in the middle of participants' sessions; run experiment servers on-demand (remove labstack:spot) and keep "
        "spot for cluster and job stacks without apps"]


def test_pulumi_up_refuses_an_over_budget_stack_before_declaring_anything(pem):
    result = evaluate(base_config(pem, budget={"hourly": 0.05}), "paris-batch2", FakeAws())
    assert isinstance(result.error, ConfigError) and result.resources == []
    assert result.error.problems[0].startswith("labstack:budget.hourly = '0.05': the stack's instances cost "
                                               "$0.1176/h")


def test_spot_node_is_a_persistent_request_that_stops_on_interruption(pem):
    result = evaluate(base_config(pem, spot={"maxPrice": 0.05}), "paris-batch2", FakeAws()).ok()
    instance = result.one(INSTANCE).inputs
    assert instance["instanceMarketOptions"] == {"marketType": "spot", "spotOptions": {
        "spotInstanceType": "persistent", "instanceInterruptionBehavior": "stop", "maxPrice": "0.05"}}
    assert instance["instanceInitiatedShutdownBehavior"] == "stop"  # a stop keeps disks, address and data volume
    assert instance["tags"][HOURLY_TAG] == "0.05000 m7i.large"  # the most an hour can cost


def test_on_demand_node_has_no_market_options_and_records_its_prices_once(pem):
    # Each resource's ignoreChanges as the program registers it (Pulumi's mocks keep no resource options).
    with registered(lambda request: list(request.ignoreChanges)) as ignored:
        result = evaluate(base_config(pem, storageGb=40), "paris-batch2", FakeAws()).ok()
    instance = result.one(INSTANCE)
    assert "instanceMarketOptions" not in instance.inputs
    assert instance.inputs["tags"][HOURLY_TAG] == "0.11760 m7i.large"
    assert instance.inputs["rootBlockDevice"]["tags"][GB_MONTH_TAG] == "0.09280"
    assert result.one(EIP).inputs["tags"][HOURLY_TAG] == "0.00500"
    # Set at creation, never rewritten by a later `pulumi up` with newer prices.
    assert ignored[instance.name][-1] == ["ami", f'tags["{HOURLY_TAG}"]', f'rootBlockDevice.tags["{GB_MONTH_TAG}"]']
    assert ignored[result.one(EIP).name][-1] == [f'tags["{HOURLY_TAG}"]']


def test_the_watcher_gets_the_running_stacks_hourly_price_and_the_total(pem):
    cfg = load_stack_config(base_config(pem, storageGb=40, budget={"total": 500}), "paris-batch2")
    # m7i.large in Paris + its public IPv4 + 40 GB of gp3 for an hour.
    assert watcher_budget_env(cfg) == {"HOURLY_PRICE": f"{0.1176 + 0.005 + 40 * 0.0928 / 730:.5f}",
                                       "BUDGET_TOTAL": "500.00"}
    spot = load_stack_config(base_config(pem, spot={"maxPrice": 0.05}, budget={"total": 80, "hourly": 1}),
                             "paris-batch2")
    assert watcher_budget_env(spot)["HOURLY_PRICE"] == f"{0.05 + 0.005 + 32 * 0.0928 / 730:.5f}"
    # No total, no stop at a total; a type without a price cannot be projected (and `invoke check` warns).
    assert watcher_budget_env(load_stack_config(base_config(pem, budget={"hourly": 1}), "paris-batch2")) == {}
    assert watcher_budget_env(load_stack_config(base_config(pem, instanceType="x2iedn.xlarge",
                                                            budget={"total": 10}), "paris-batch2")) == {}


def test_a_clusters_workers_count_in_the_price():
    cluster = SimpleNamespace(workers=3, worker_type="c7i.xlarge")
    types = stack_instance_types("m7i.large", cluster)
    assert types == ["m7i.large", "c7i.xlarge", "c7i.xlarge", "c7i.xlarge"]
    assert stack_instance_types("m7i.large", SimpleNamespace(workers=2, worker_type=None)) == ["m7i.large"] * 3
    price = instances_hourly("us-east-1", types, None)
    assert price.usd == pytest.approx(0.1008 + 3 * 0.1785)
    assert price.parts == ("1 x m7i.large at $0.1008 on-demand", "3 x c7i.xlarge at $0.1785 on-demand")


def test_spot_and_budget_mean_nothing_for_an_existing_server(pem):
    existing = {"host": "203.0.113.7", "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHwFtyF2ZnE5TF0sWJx6qcI7Ek5P+w6b"
                                                  "1LtgOyQhS5iM"}
    assert problems(pem, existingServer=existing, sshCidrs=None, dnsHost=None, spot=True,
                    budget={"total": 10}, **{"aws:region": None}) == [
        "labstack:spot has no effect with labstack:existingServer (labstack makes no instance to put on spot or to "
        "price); remove it",
        "labstack:budget has no effect with labstack:existingServer (labstack makes no instance to put on spot or to "
        "price); remove it"]


def test_invoke_check_refuses_an_over_budget_stack_file(pem, tmp_path, monkeypatch):
    import labstack.stacks.stackfile
    from labstack.stacks.check import check_stacks
    from rich.console import Console

    stacks = tmp_path / "stacks"
    stacks.mkdir()
    monkeypatch.setattr(labstack.stacks.stackfile, "STACKS_DIR", stacks)
    (stacks / "Pulumi.gpu-run.yaml").write_text(
        "config:\n  aws:region: eu-west-3\n  labstack:serverPem: " + str(pem) + "\n"
        "  labstack:sshCidrs: [100.64.0.0/24]\n  labstack:instanceType: g5.xlarge\n"
        "  labstack:budget: {hourly: 1.0}\n")
    console = Console(record=True, width=400)
    assert check_stacks("gpu-run", console) is False
    assert ("labstack:budget.hourly = '1.0': the stack's instances cost $1.1737/h (1 x g5.xlarge at $1.1737 "
            "on-demand; AWS list prices of 2025-06), above this budget") in console.export_text()


def test_a_tiny_max_price_reaches_ec2_as_a_plain_decimal():
    from components.aws.node import spot_market
    from components.config.cost import SpotSettings

    assert spot_market(SpotSettings.model_validate({"maxPrice": "0.00002"})).spot_options.max_price == "0.00002"
    assert spot_market(SpotSettings.model_validate({"maxPrice": 2})).spot_options.max_price == "2"
    assert spot_market(None) is None
