"""Settings of the cluster roles: defaults, variables, options, validation."""

from __future__ import annotations

import pytest

from switchboard.cli.main import build_parser
from switchboard.cluster.cli import build_settings
from switchboard.cluster.settings import ClusterSettings


def test_environment_overrides_defaults() -> None:
    cluster = ClusterSettings()
    cluster.apply_environ(
        {
            "SWITCHBOARD_NAMESPACE": "prod",
            "SWITCHBOARD_PARTITIONS": "32",
            "SWITCHBOARD_LEASE_TTL": "4.5",
            "SWITCHBOARD_POSTGRES_DSNS": "postgresql://a/db, postgresql://b/db",
        }
    )

    assert cluster.namespace == "prod"
    assert cluster.partitions == 32
    assert cluster.lease_ttl == 4.5
    assert cluster.dsns == ["postgresql://a/db", "postgresql://b/db"]
    assert cluster.redis_prefix == "prod:"


def test_unparsable_variable_names_it() -> None:
    with pytest.raises(ValueError, match="SWITCHBOARD_PARTITIONS='many'"):
        ClusterSettings().apply_environ({"SWITCHBOARD_PARTITIONS": "many"})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("namespace", "a.b", "invalid namespace"),
        ("name", "has space", "invalid name"),
        ("postgres_dsns", " , ", "invalid postgres_dsns"),
        ("partitions", 0, "invalid partitions 0"),
        ("lease_ttl", 0.0, "invalid lease_ttl"),
        ("postgres_pool_size", 0, "invalid postgres_pool_size"),
    ],
)
def test_invalid_values_are_rejected(field: str, value: object, message: str) -> None:
    cluster = ClusterSettings()
    setattr(cluster, field, value)

    with pytest.raises(ValueError, match=message):
        cluster.validate()


def test_process_names_are_unique_per_start() -> None:
    cluster = ClusterSettings(name="edge")

    first = cluster.process_name("gateway", unique=True)
    second = cluster.process_name("gateway", unique=True)

    assert first.startswith("edge-")
    assert first != second


def test_role_options_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_NAMESPACE", "from-env")
    monkeypatch.setenv("SWITCHBOARD_REDIS_URL", "redis://env:6379/0")
    monkeypatch.setenv("SWITCHBOARD_HEARTBEAT", "20")
    args = build_parser().parse_args(
        ["gateway", "--namespace", "from-option", "--tcp", "0.0.0.0:9000"]
    )

    settings, cluster = build_settings("gateway", args)

    assert cluster.namespace == "from-option"
    assert cluster.redis_url == "redis://env:6379/0"
    assert settings.heartbeat == 20
    assert (settings.tcp_host, settings.tcp_port) == ("0.0.0.0", 9000)
    assert settings.http_port == 7081


@pytest.mark.parametrize(
    ("role", "http_port"), [("dispatcher", 7080), ("gateway", 7081), ("logic", 7090)]
)
def test_role_default_ports(role: str, http_port: int) -> None:
    settings, _ = build_settings(role, build_parser().parse_args([role]))

    assert settings.http_port == http_port
