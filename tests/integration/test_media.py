"""Files end to end: upload, send a media message, receive it, download it.

Through the SDK and through the ``switchboard`` command, against a real
server process.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from PIL import Image

from switchboard.client import (
    MEDIA,
    ApiError,
    Client,
    Media,
    Message,
    SendRejected,
)
from switchboard.errors import ErrorCode
from tests.integration.conftest import ClientFactory
from tests.integration.test_cli import (
    assert_one_line_error,
    cli_env,
    json_lines,
    ok,
    run_cli,
    sign_up,
)
from tests.support.server import ServerProcess


def write_png(path: Path, size: tuple[int, int]) -> bytes:
    # Noise compresses badly, so even small images take several KB.
    Image.effect_noise(size, 64).convert("RGB").save(path, "PNG")
    return path.read_bytes()


async def next_incoming(client: Client) -> Message:
    async with asyncio.timeout(10):
        while True:
            message = await client.next_message()
            if not message.outgoing:
                return message


async def test_sdk_file_round_trip(clients: ClientFactory, tmp_path: Path) -> None:
    alice = await clients("alice")
    bob = await clients("bob", transport="ws")
    data = write_png(tmp_path / "holiday photo.png", (640, 480))

    sent = await alice.send_file("bob", tmp_path / "holiday photo.png")
    message = await next_incoming(bob)
    assert message.id == sent.id
    assert message.content_type == MEDIA
    assert message.text is None
    media = message.media
    assert media is not None
    assert media.id == hashlib.sha256(data).hexdigest()
    assert media.content_type == "image/png"
    assert media.size == len(data)
    assert media.name == "holiday photo.png"
    assert (media.width, media.height) == (640, 480)
    assert media.url is None  # a message carries no URL; download() gets one

    downloaded = await bob.download(media.id, tmp_path / "copy.png")
    assert (tmp_path / "copy.png").read_bytes() == data
    assert downloaded.url is not None
    assert downloaded.thumbnail_url is not None
    async with httpx.AsyncClient() as http:
        response = await http.get(downloaded.thumbnail_url)
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.content)).size == (320, 240)


async def test_sdk_upload_dedup_and_send_media(
    clients: ClientFactory, tmp_path: Path
) -> None:
    alice = await clients("alice")
    bob = await clients("bob")
    (tmp_path / "a.bin").write_bytes(b"same bytes")
    (tmp_path / "b.bin").write_bytes(b"same bytes")
    first = await alice.upload(tmp_path / "a.bin")
    second = await alice.upload(tmp_path / "b.bin")
    assert second.id == first.id
    assert first.content_type == "application/octet-stream"
    assert first.thumbnail_url is None

    await alice.send_media("bob", second)
    received = (await next_incoming(bob)).media
    assert received == Media(
        id=first.id, content_type=first.content_type, size=10, name="b.bin"
    )


async def test_history_shows_media(clients: ClientFactory, tmp_path: Path) -> None:
    alice = await clients("alice")
    await clients("bob", connect=False)
    write_png(tmp_path / "p.png", (20, 10))
    await alice.send_file("bob", tmp_path / "p.png")
    page = await alice.history("bob")
    media = page.messages[0].media
    assert media is not None
    assert (media.name, media.width, media.height) == ("p.png", 20, 10)


async def test_malformed_media_message_rejected(clients: ClientFactory) -> None:
    alice = await clients("alice")
    await clients("bob", connect=False)
    bogus = Media(id="../../etc/passwd", content_type="image/png", size=1)
    with pytest.raises(SendRejected) as caught:
        await alice.send_media("bob", bogus)
    assert caught.value.code is ErrorCode.INVALID_MESSAGE
    assert "'media' must be the id from POST /v1/media" in caught.value.reason


async def test_download_unknown_media_is_404(
    clients: ClientFactory, tmp_path: Path
) -> None:
    alice = await clients("alice", connect=False)
    with pytest.raises(ApiError) as caught:
        await alice.download("0" * 64, tmp_path / "never")
    assert caught.value.status == 404
    assert not (tmp_path / "never").exists()


async def test_upload_above_limit_is_413(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "data",
        tmp_path / "server.log",
        {"SWITCHBOARD_MEDIA_MAX_SIZE": "1000"},
    )
    server.start()
    try:
        async with Client(server.base_url) as client:
            await client.create_account("carol", "carol-password")
            await client.login("carol", "carol-password")
            (tmp_path / "big.bin").write_bytes(os.urandom(1001))
            with pytest.raises(ApiError) as caught:
                await client.upload(tmp_path / "big.bin")
            assert caught.value.status == 413
            assert "limit of 1000 bytes" in caught.value.message
            (tmp_path / "fits.bin").write_bytes(os.urandom(1000))
            assert (await client.upload(tmp_path / "fits.bin")).size == 1000
    finally:
        server.terminate()


def test_cli_file_round_trip(server: ServerProcess, tmp_path: Path) -> None:
    url = server.base_url
    alice, bob = tmp_path / "home-alice", tmp_path / "home-bob"
    sign_up(alice, url, "alice")
    sign_up(bob, url, "bob")
    image = tmp_path / "name.png"
    data = write_png(image, (300, 200))
    media_id = hashlib.sha256(data).hexdigest()

    receipt = json_lines(
        ok(run_cli(alice, url, "send", "--to", "bob", "--file", str(image), "--json"))
    )[0]
    assert receipt["to"] == "bob"
    assert receipt["media"]["id"] == media_id
    assert receipt["media"]["content_type"] == "image/png"

    inbox = json_lines(ok(run_cli(bob, url, "inbox", "--json")))
    assert len(inbox) == 1
    assert inbox[0]["content_type"] == MEDIA
    assert inbox[0]["text"] is None
    assert inbox[0]["media"] == {
        "id": media_id,
        "content_type": "image/png",
        "size": len(data),
        "name": "name.png",
        "width": 300,
        "height": 200,
    }

    assert len(data) > 10 * 1024
    size_kb = f"{len(data) / 1024:.0f}"
    history = ok(run_cli(bob, url, "history", "alice")).splitlines()
    assert history[0].endswith(f"alice -> bob: [file name.png image/png {size_kb} KB]")

    output = tmp_path / "downloads" / "copy.png"
    output.parent.mkdir()
    downloaded = ok(run_cli(bob, url, "download", media_id, "--output", str(output)))
    assert f"to {output}" in downloaded
    assert output.read_bytes() == data


def test_cli_download_default_name_and_no_overwrite(
    server: ServerProcess, tmp_path: Path
) -> None:
    url = server.base_url
    home = tmp_path / "home-alice"
    sign_up(home, url, "alice")
    source = tmp_path / "report.pdf"
    source.write_bytes(b"%PDF-1.4\nnot much of a report\n")
    receipt = json_lines(
        ok(run_cli(home, url, "send", "--to", "alice", "--file", str(source), "--json"))
    )[0]
    workdir = tmp_path / "work"
    workdir.mkdir()
    first = run_cli_in(workdir, home, url, "download", receipt["media"]["id"])
    assert first.returncode == 0, first.stderr
    assert (workdir / "report.pdf").read_bytes() == source.read_bytes()
    again = run_cli_in(workdir, home, url, "download", receipt["media"]["id"])
    assert_one_line_error(again, 1, "report.pdf exists", "--output")


def run_cli_in(
    cwd: Path, home: Path, url: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchboard", *args],
        capture_output=True,
        text=True,
        env=cli_env(home, url),
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_cli_send_needs_text_or_file(server: ServerProcess, tmp_path: Path) -> None:
    home = tmp_path / "home-alice"
    sign_up(home, server.base_url, "alice")
    both = run_cli(
        home, server.base_url, "send", "--to", "alice", "text", "--file", "x"
    )
    assert_one_line_error(both, 2, "give either TEXT or --file PATH")
    neither = run_cli(home, server.base_url, "send", "--to", "alice")
    assert_one_line_error(neither, 2, "give either TEXT or --file PATH")
    missing = run_cli(
        home, server.base_url, "send", "--to", "alice", "--file", str(tmp_path / "no")
    )
    assert_one_line_error(missing, 1, "No such file")
