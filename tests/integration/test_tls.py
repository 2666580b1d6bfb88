"""TLS on the TCP gateway, HTTPS and WSS, with a self-signed certificate."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from switchboard.client import Client, ClientOptions, ServerUnreachable
from switchboard.client.transport import TcpTransport
from switchboard.errors import ConnectionBroken
from switchboard.protocol import pb
from switchboard.protocol.connection import Connection, Role
from switchboard.tls import client_context
from tests.support.server import ServerProcess
from tests.support.tls import make_certificate


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[ServerProcess]:
    cert, key = make_certificate(tmp_path)
    env = {"SWITCHBOARD_TLS_CERT": str(cert), "SWITCHBOARD_TLS_KEY": str(key)}
    server = ServerProcess(tmp_path / "data", tmp_path / "server.log", env, cert)
    server.start()
    yield server
    server.terminate()
    print("server log tail:\n" + server.log()[-3000:])


def trusting(server: ServerProcess) -> ClientOptions:
    assert server.ca_file is not None
    return ClientOptions(
        tls=client_context(str(server.ca_file)), backoff_base=0.05, backoff_cap=0.5
    )


async def chat_over(server: ServerProcess, transport: str) -> None:
    alice = Client(server.base_url, options=trusting(server))
    bob = Client(server.base_url, options=trusting(server))
    try:
        for client, name in ((alice, "alice"), (bob, "bob")):
            await client.create_account(name, "password-" + name)
            await client.login(name, "password-" + name, device="d1")
            await client.connect(transport, timeout=10)
        sent = await alice.send("bob", "over TLS")
        message = await asyncio.wait_for(bob.next_message(), 10)
    finally:
        await alice.close()
        await bob.close()

    assert message.text == "over TLS"
    assert message.id == sent.id


async def test_sdk_chats_over_tls_tcp(tls_server: ServerProcess) -> None:
    await chat_over(tls_server, "tcp")


async def test_sdk_chats_over_wss(tls_server: ServerProcess) -> None:
    await chat_over(tls_server, "ws")


def test_gateways_list_tls_addresses(tls_server: ServerProcess) -> None:
    assert tls_server.ca_file is not None
    context = client_context(str(tls_server.ca_file))
    listing = httpx.get(tls_server.base_url + "/v1/gateways", verify=context).json()

    tcp, ws = listing["gateways"]
    assert tcp["tls"] is True
    assert tcp["address"] == f"127.0.0.1:{tls_server.tcp_port}"
    assert ws["url"] == f"wss://127.0.0.1:{tls_server.http_port}/v1/ws"


async def test_plaintext_client_closed_server_survives(
    tls_server: ServerProcess,
) -> None:
    with socket.create_connection(tls_server.tcp_address, timeout=10) as sock:
        connect = pb.Connect(version=1, token="x", device="d1")
        sock.sendall(Connection(Role.CLIENT).send(connect))
        data = b"x"
        while data:
            data = sock.recv(65536)

    await chat_over(tls_server, "tcp")


async def test_untrusted_certificate_rejected(tls_server: ServerProcess) -> None:
    # The system's trust store does not contain the self-signed certificate.
    client = Client(tls_server.base_url)
    with pytest.raises(ServerUnreachable, match="CERTIFICATE_VERIFY_FAILED"):
        await client.create_account("mallory", "password-mallory")
    await client.close()

    with pytest.raises(ConnectionBroken, match="CERTIFICATE_VERIFY_FAILED"):
        address = f"127.0.0.1:{tls_server.tcp_port}"
        await TcpTransport.open(address, ssl.create_default_context())


def test_cli_trusts_ssl_cert_file(tls_server: ServerProcess, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SSL_CERT_FILE": str(tls_server.ca_file),
        "SWITCHBOARD_HOME": str(tmp_path / "home"),
        "SWITCHBOARD_SERVER": tls_server.base_url,
    }

    def cli(*arguments: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "switchboard", *arguments],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )

    for name in ("carol", "dave"):
        created = cli(
            "account", "create", name, "--password-stdin", stdin="pw-" + name * 3
        )
        assert created.returncode == 0, created.stderr
    login = cli("login", "carol", "--password-stdin", stdin="pw-" + "carol" * 3)
    assert login.returncode == 0, login.stderr
    sent = cli("send", "--to", "dave", "hello over TLS")
    assert sent.returncode == 0, sent.stderr


def test_serve_rejects_incomplete_tls(tmp_path: Path) -> None:
    def serve(*options: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "switchboard", "serve", *options],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tmp_path,
        )

    alone = serve("--tls-cert", str(tmp_path / "cert.pem"))
    missing = serve("--tls-cert", "nope.pem", "--tls-key", "nope-key.pem")

    assert alone.returncode == 2
    assert "tls_cert and tls_key go together" in alone.stderr
    assert missing.returncode == 2
    assert "TLS certificate file 'nope.pem' not found" in missing.stderr
