"""The chaos proxy injects each fault, and length-prefixed frames still decode."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.chaos.faults import FaultSettings
from switchboard.chaos.proxy import ChaosProxy, _cut
from switchboard.protocol.framing import FrameDecoder, encode_frame
from tests.support.server import free_port


@dataclass
class Sink:
    """A TCP server that records each read and decodes the frames in them."""

    reads: list[bytes] = field(default_factory=list)
    frames: list[tuple[int, bytes]] = field(default_factory=list)
    arrival: list[float] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.writers.append(writer)
        decoder = FrameDecoder()
        try:
            while data := await reader.read(65536):
                self.reads.append(data)
                for frame in decoder.feed(data):
                    self.frames.append(frame)
                    self.arrival.append(time.monotonic())
                self.changed.set()
            self.ended.append("eof")
        except ConnectionResetError:
            self.ended.append("reset")
        self.changed.set()

    async def wait_frames(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.frames) < count:
                self.changed.clear()
                await self.changed.wait()

    async def wait_ended(self) -> None:
        async with asyncio.timeout(10):
            while not self.ended:
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    sink = Sink()
    server = await asyncio.start_server(sink.handle, "127.0.0.1", 0)
    sink.port = server.sockets[0].getsockname()[1]
    yield sink
    for writer in sink.writers:
        writer.transport.abort()
    server.close()


async def start_proxy(sink: Sink, **faults: float) -> ChaosProxy:
    settings = FaultSettings().replace(**faults)
    proxy = ChaosProxy(("127.0.0.1", sink.port), settings)
    await proxy.start()
    return proxy


async def poll(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - the proxy has no event for it
            await asyncio.sleep(0.01)


def frames_of(count: int) -> list[tuple[int, bytes]]:
    # Sizes from 1 to 300 bytes, so that some length prefixes take two bytes.
    return [(3, bytes([i % 251]) * (1 + i * 37 % 300)) for i in range(count)]


async def send_frames(
    proxy: ChaosProxy, frames: list[tuple[int, bytes]], gap: float
) -> asyncio.StreamWriter:
    _, writer = await asyncio.open_connection(*proxy.address)
    for frame_type, payload in frames:
        writer.write(encode_frame(frame_type, payload))
        await writer.drain()
        if gap:
            await asyncio.sleep(gap)
    return writer


def frame_ends(frames: list[tuple[int, bytes]]) -> set[int]:
    ends, offset = set(), 0
    for frame_type, payload in frames:
        offset += len(encode_frame(frame_type, payload))
        ends.add(offset)
    return ends


async def test_split_frames_still_decode(sink: Sink) -> None:
    proxy = await start_proxy(sink, split=1.0, seed=1)
    frames = frames_of(40)
    writer = await send_frames(proxy, frames, gap=0.01)
    await sink.wait_frames(len(frames))

    assert sink.frames == frames
    assert proxy.counts.splits > 0
    read_ends, offset = set(), 0
    for data in sink.reads:
        offset += len(data)
        read_ends.add(offset)
    assert read_ends - frame_ends(frames), "no read ended inside a frame"
    writer.close()
    await proxy.close()


async def test_coalesce_joins_frames(sink: Sink) -> None:
    proxy = await start_proxy(sink, coalesce=1.0, coalesce_wait=0.05, seed=2)
    frames = frames_of(30)
    writer = await send_frames(proxy, frames, gap=0.002)
    await sink.wait_frames(len(frames))

    assert sink.frames == frames
    assert proxy.counts.coalesced > 0
    assert len(sink.reads) < len(frames)
    writer.close()
    await proxy.close()


async def test_delay_and_jitter_keep_order(sink: Sink) -> None:
    proxy = await start_proxy(sink, delay=0.2, jitter=0.1, seed=3)
    frames = frames_of(50)
    started = time.monotonic()
    writer = await send_frames(proxy, frames, gap=0.0)
    await sink.wait_frames(len(frames))

    assert sink.frames == frames
    assert sink.arrival[0] - started >= 0.2
    assert proxy.counts.delayed > 0
    writer.close()
    await proxy.close()


async def test_loss_costs_a_retransmit_delay(sink: Sink) -> None:
    proxy = await start_proxy(sink, loss=1.0, retransmit_delay=0.3, seed=4)
    frames = frames_of(1)
    started = time.monotonic()
    writer = await send_frames(proxy, frames, gap=0.0)
    await sink.wait_frames(1)

    assert sink.arrival[0] - started >= 0.3
    assert proxy.counts.lost == 1
    writer.close()
    await proxy.close()


async def test_reset_sends_rst_to_both_sides(sink: Sink) -> None:
    proxy = await start_proxy(sink, reset=1.0, seed=5)
    reader, writer = await asyncio.open_connection(*proxy.address)
    writer.write(encode_frame(3, b"doomed"))
    await writer.drain()

    with pytest.raises(ConnectionResetError):
        async with asyncio.timeout(5):
            await reader.read(100)
    await sink.wait_ended()
    assert sink.ended == ["reset"]
    assert sink.frames == []
    assert proxy.counts.resets == 1
    writer.close()
    await proxy.close()


async def test_blackhole_leaves_half_open(sink: Sink) -> None:
    proxy = await start_proxy(sink, blackhole=1.0, seed=6)
    reader, writer = await asyncio.open_connection(*proxy.address)
    writer.write(encode_frame(3, b"first"))
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.write(encode_frame(3, b"second"))
    await writer.drain()
    await poll(lambda: bool(sink.writers))
    sink.writers[0].write(encode_frame(5, b"never arrives"))
    sink.writers[0].close()

    # The client sees neither data nor the server's close: half-open.
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await reader.read(100)
    assert sink.frames == []
    assert proxy.counts.blackholes == 1
    assert proxy.open_links == 1

    writer.close()
    await poll(lambda: proxy.open_links == 0)
    await proxy.close()


async def test_stall_holds_bytes_until_resume(sink: Sink) -> None:
    proxy = await start_proxy(sink)
    frames = frames_of(3)
    proxy.stall()
    writer = await send_frames(proxy, frames, gap=0.0)
    await asyncio.sleep(0.3)
    assert sink.frames == []

    proxy.resume()
    await sink.wait_frames(len(frames))
    assert sink.frames == frames
    assert proxy.counts.stalls == 1
    writer.close()
    await proxy.close()


async def test_target_down_closes_client() -> None:
    proxy = ChaosProxy(("127.0.0.1", free_port()))
    await proxy.start()
    reader, writer = await asyncio.open_connection(*proxy.address)
    async with asyncio.timeout(5):
        with contextlib.suppress(ConnectionResetError):
            assert await reader.read(100) == b""
    assert proxy.counts.refused == 1
    writer.close()
    await proxy.close()


async def test_same_seed_same_faults(sink: Sink) -> None:
    async def run(seed: int) -> tuple[int, int]:
        proxy = await start_proxy(
            sink, split=0.5, loss=0.5, retransmit_delay=0.001, seed=seed
        )
        # Gaps long enough that every write is read as one chunk.
        writer = await send_frames(proxy, frames_of(20), gap=0.03)
        await asyncio.sleep(0.2)
        writer.close()
        await proxy.close()
        return proxy.counts.splits, proxy.counts.lost

    first = await run(11)
    assert first == await run(11)
    assert sum(first) > 0


@given(st.binary(min_size=2, max_size=200), st.integers(0, 2**32))
def test_cut_keeps_every_byte(data: bytes, seed: int) -> None:
    pieces = _cut(data, random.Random(seed))
    assert b"".join(pieces) == data
    assert 2 <= len(pieces) <= 4
    assert all(pieces)


def test_settings_reject_bad_probability() -> None:
    with pytest.raises(ValueError, match="reset"):
        FaultSettings(reset=1.5).validate()
    with pytest.raises(ValueError, match="delay"):
        FaultSettings(delay=-1).validate()


async def test_stall_can_refuse_new_connections(sink: Sink) -> None:
    proxy = await start_proxy(sink)
    proxy.stall(refuse_new=True)
    reader, writer = await asyncio.open_connection(*proxy.address)
    with pytest.raises(ConnectionResetError):
        async with asyncio.timeout(5):
            await reader.read(100)
    assert proxy.counts.refused == 1

    proxy.resume()
    writer.close()
    frames = frames_of(2)
    writer = await send_frames(proxy, frames, gap=0.0)
    await sink.wait_frames(len(frames))
    assert sink.frames == frames
    writer.close()
    await proxy.close()
