"""labstack/cost/pricing.py: the AWS Pricing API's GetProducts answer parsed into a price (botocore's Stubber: moto has no
Pricing API), the day-long disk cache, the built-in table as a marked estimate when the API fails, and spot arithmetic.

The answers are shaped as AWS documents them: PriceList is a list of JSON *strings*, one product each, the on-demand
price at terms.OnDemand.<term>.priceDimensions.<dimension>.pricePerUnit.USD. STORAGE is AWS's own GetProducts example
(botocore/data/pricing/2017-10-15/examples-1.json)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from labstack.cost import pricing

STORAGE = ("{\"product\":{\"productFamily\":\"Storage\",\"attributes\":{\"storageMedia\":\"SSD-backed\",\"maxThroughput"
           "volume\":\"320 MB/sec\",\"volumeType\":\"Provisioned IOPS\",\"maxIopsvolume\":\"20000\",\"servicecode\":\""
           "AmazonEC2\",\"usagetype\":\"CAN1-EBS:VolumeUsage.piops\",\"locationType\":\"AWS Region\",\"location\":\""
           "Canada (Central)\",\"servicename\":\"Amazon Elastic Compute Cloud\",\"maxVolumeSize\":\"16 TiB\",\"opera"
           "tion\":\"\"},\"sku\":\"WQGC34PB2AWS8R4U\"},\"serviceCode\":\"AmazonEC2\",\"terms\":{\"OnDemand\":{\"WQGC34"
           "PB2AWS8R4U.JRTCKXETXF\":{\"priceDimensions\":{\"WQGC34PB2AWS8R4U.JRTCKXETXF.6YS6EN2CT7\":{\"unit\":\"GB-Mo"
           "\",\"endRange\":\"Inf\",\"description\":\"$0.138 per GB-month of Provisioned IOPS SSD (io1)  provisioned "
           "storage - Canada (Central)\",\"appliesTo\":[],\"rateCode\":\"WQGC34PB2AWS8R4U.JRTCKXETXF.6YS6EN2CT7\",\"be"
           "ginRange\":\"0\",\"pricePerUnit\":{\"USD\":\"0.1380000000\"}}},\"sku\":\"WQGC34PB2AWS8R4U\",\"effectiveDa"
           "te\":\"2017-08-01T00:00:00Z\",\"offerTermCode\":\"JRTCKXETXF\",\"termAttributes\":{}}}},\"version\":\"2017"
           "0901182201\",\"publicationDate\":\"2017-09-01T18:22:01Z\"}")


def instance_product(usd: str, sku: str = "JRTCKPARIS7I", reserved: bool = True) -> str:
    """One m7i.large product in Paris as GetProducts lists it: the on-demand term, and a reserved term whose upfront
    fee and hourly rate must not be taken for the on-demand price."""
    terms = {"OnDemand": {f"{sku}.JRTCKXETXF": {
        "priceDimensions": {f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
            "unit": "Hrs", "endRange": "Inf", "beginRange": "0", "appliesTo": [],
            "description": f"${usd} per On Demand Linux m7i.large Instance Hour",
            "rateCode": f"{sku}.JRTCKXETXF.6YS6EN2CT7", "pricePerUnit": {"USD": usd}}},
        "sku": sku, "effectiveDate": "2026-11-01T00:00:00Z", "offerTermCode": "JRTCKXETXF", "termAttributes": {}}}}
    if reserved:
        terms["Reserved"] = {f"{sku}.4NA7Y494T4": {"priceDimensions": {
            f"{sku}.4NA7Y494T4.2TG2D8R56U": {"unit": "Quantity", "pricePerUnit": {"USD": "512"}},
            f"{sku}.4NA7Y494T4.6YS6EN2CT7": {"unit": "Hrs", "pricePerUnit": {"USD": "0.0584000000"}}},
            "sku": sku, "offerTermCode": "4NA7Y494T4",
            "termAttributes": {"LeaseContractLength": "1yr", "PurchaseOption": "Partial Upfront"}}}
    return json.dumps({"product": {"productFamily": "Compute Instance", "sku": sku, "attributes": {
        "instanceType": "m7i.large", "regionCode": "eu-west-3", "location": "EU (Paris)", "operatingSystem": "Linux",
        "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used", "licenseModel": "No License required",
        "usagetype": "EU-BoxUsage:m7i.large", "servicecode": "AmazonEC2"}},
        "serviceCode": "AmazonEC2", "terms": terms, "version": "20261101000000",
        "publicationDate": "2026-11-01T00:00:00Z"})


@pytest.fixture
def stubbed():
    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_parser_takes_the_on_demand_price_per_unit():
    assert pricing.on_demand_usd([instance_product("0.1176000000")], "Hrs") == 0.1176
    assert pricing.on_demand_usd([STORAGE], "GB-Mo") == 0.138
    assert pricing.on_demand_usd([STORAGE], "Hrs") is None
    assert pricing.on_demand_usd([], "Hrs") is None
    # Two products the filters do not tell apart: the higher price, so a budget never undercounts.
    assert pricing.on_demand_usd([instance_product("0.1176", "A"), instance_product("0.1290", "B")], "Hrs") == 0.129
    assert pricing.on_demand_usd([instance_product("0.0000000000", reserved=False)], "Hrs") is None


def test_instance_price_comes_from_get_products_with_labstacks_filters_and_is_cached_a_day(stubbed, tmp_path):
    client, stubber = stubbed
    expected = {"ServiceCode": "AmazonEC2", "FormatVersion": "aws_v1", "MaxResults": 100, "Filters": [
        {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "eu-west-3"},
        {"Type": "TERM_MATCH", "Field": "instanceType", "Value": "m7i.large"},
        {"Type": "TERM_MATCH", "Field": "operatingSystem", "Value": "Linux"},
        {"Type": "TERM_MATCH", "Field": "tenancy", "Value": "Shared"},
        {"Type": "TERM_MATCH", "Field": "preInstalledSw", "Value": "NA"},
        {"Type": "TERM_MATCH", "Field": "capacitystatus", "Value": "Used"}]}
    answer = {"FormatVersion": "aws_v1", "PriceList": [instance_product("0.1230000000")]}
    stubber.add_response("get_products", answer, expected)
    stubber.add_response("get_products", answer, expected)  # a day later, asked again
    clock = Clock()
    cache = tmp_path / "cache" / "labstack" / "aws-prices.json"
    pricer = pricing.Pricer(lambda: client, cache_path=cache, now=clock)
    first = pricer.instance_hourly("eu-west-3", "m7i.large")
    assert first == pricing.Price(0.123, "AWS Pricing API, 2027-01-15", False)
    assert json.loads(cache.read_text()) == {"instance/eu-west-3/m7i.large": {"usd": 0.123, "at": clock.now}}
    # Another report within the day (a new Pricer, as a new `invoke cost` is) reads the cache: no second request.
    clock.now += 23 * 3600
    again = pricing.Pricer(lambda: client, cache_path=cache, now=clock).instance_hourly("eu-west-3", "m7i.large")
    assert again == first
    clock.now += 2 * 3600
    assert pricing.Pricer(lambda: client, cache_path=cache, now=clock).instance_hourly(
        "eu-west-3", "m7i.large").source == "AWS Pricing API, 2027-01-16"


def test_gp3_price_from_the_storage_product(stubbed, tmp_path):
    client, stubber = stubbed
    stubber.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [STORAGE]}, {
        "ServiceCode": "AmazonEC2", "FormatVersion": "aws_v1", "MaxResults": 100, "Filters": [
            {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "ca-central-1"},
            {"Type": "TERM_MATCH", "Field": "productFamily", "Value": "Storage"},
            {"Type": "TERM_MATCH", "Field": "volumeApiName", "Value": "gp3"}]})
    price = pricing.Pricer(lambda: client, cache_path=tmp_path / "prices.json", now=Clock()).gp3_gb_month(
        "ca-central-1")
    assert (price.usd, price.is_estimate) == (0.138, False)


def test_unreachable_api_falls_back_to_the_table_marked_as_an_estimate_and_is_asked_once(stubbed, tmp_path):
    client, stubber = stubbed
    stubber.add_client_error("get_products", service_error_code="AccessDeniedException",
                             service_message="User is not authorized to perform: pricing:GetProducts")
    pricer = pricing.Pricer(lambda: client, cache_path=tmp_path / "prices.json", now=Clock())
    price = pricer.instance_hourly("eu-west-3", "m7i.large")
    assert (price.usd, price.is_estimate) == (0.1176, True)
    assert price.source == ("built-in table 2025-06 (estimate); Pricing API: An error occurred "
                            "(AccessDeniedException) when calling the GetProducts operation: User is not authorized "
                            "to perform: pricing:GetProducts")
    # No second request in this run (the Stubber would fail on one it was not given); the table answers.
    assert pricer.gp3_gb_month("eu-west-3") == pricing.Price(0.0928, price.source, True)
    assert not (tmp_path / "prices.json").exists()  # a fallback is never cached as AWS's price


def test_no_network_falls_back_too(tmp_path):
    def offline():
        raise EndpointConnectionError(endpoint_url="https://api.pricing.us-east-1.amazonaws.com/")
    pricer = pricing.Pricer(offline, cache_path=tmp_path / "prices.json", now=Clock())
    price = pricer.instance_hourly("us-east-1", "t3.micro")
    assert (price.usd, price.is_estimate) == (0.0104, True)
    assert "Could not connect to the endpoint URL" in price.source
    unknown = pricer.instance_hourly("us-east-1", "u-24tb1.224xlarge")
    assert (unknown.usd, unknown.is_estimate) == (None, True)


def test_a_product_aws_does_not_list_falls_back_without_blaming_the_network(stubbed, tmp_path):
    client, stubber = stubbed
    stubber.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": []})
    price = pricing.Pricer(lambda: client, cache_path=tmp_path / "p.json", now=Clock()).instance_hourly(
        "eu-west-3", "m7i.large")
    assert price == pricing.Price(0.1176, "built-in table 2025-06 (estimate); not in the Pricing API", True)


def test_spot_cost_holds_each_price_until_the_next():
    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    history = [(t0, 0.04), (t0 + timedelta(hours=10), 0.06)]
    # 2 h before the first known price count at it; 10 h at 0.04, then 5 h at 0.06.
    assert pricing.spot_cost(history, [(t0 - timedelta(hours=2), t0 + timedelta(hours=15))]) == pytest.approx(
        12 * 0.04 + 5 * 0.06)
    # Two running periods with a stop between them.
    assert pricing.spot_cost(history, [(t0 + timedelta(hours=1), t0 + timedelta(hours=2)),
                                       (t0 + timedelta(hours=11), t0 + timedelta(hours=13))]) == pytest.approx(
        0.04 + 2 * 0.06)
    assert pricing.spot_cost([], [(t0, t0 + timedelta(hours=1))]) == 0
