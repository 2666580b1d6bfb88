"""Coverage-guided fuzzing of the frame decoder (atheris).

Run: ``python tests/fuzz/fuzz_decoder.py [libFuzzer flags] CORPUS_DIR...``.
Each input is split into chunks at positions the input itself chooses. The
decoder must produce the same frames for any split, or fail with
ProtocolError for every split, and it must raise nothing else.
"""

from __future__ import annotations

import itertools
import sys

import atheris

with atheris.instrument_imports():
    from switchboard.errors import ProtocolError
    from switchboard.protocol.framing import FrameDecoder

MAX_FRAME_SIZE = 4096


def decode(chunks: list[bytes]) -> tuple[list[tuple[int, bytes]], bool]:
    """Return the frames decoded from ``chunks`` and whether decoding failed."""
    decoder = FrameDecoder(MAX_FRAME_SIZE)
    frames: list[tuple[int, bytes]] = []
    try:
        for chunk in chunks:
            frames.extend(decoder.feed(chunk))
    except ProtocolError:
        return frames, True
    return frames, False


def test_one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    cuts = sorted(
        provider.ConsumeIntListInRange(provider.ConsumeIntInRange(0, 8), 0, 4096)
    )
    stream = provider.ConsumeBytes(provider.remaining_bytes())
    bounds = [0, *(min(cut, len(stream)) for cut in cuts), len(stream)]
    chunks = [stream[start:end] for start, end in itertools.pairwise(bounds)]

    whole_frames, whole_failed = decode([stream])
    split_frames, split_failed = decode(chunks)

    if whole_failed != split_failed:
        raise AssertionError(
            f"failure differs: whole {whole_failed}, split {split_failed}"
        )
    if not whole_failed and whole_frames != split_frames:
        raise AssertionError("frames differ between the whole stream and its chunks")
    for frame_type, payload in whole_frames:
        if not 0 <= frame_type <= 255 or len(payload) > MAX_FRAME_SIZE:
            raise AssertionError(
                f"impossible frame: type {frame_type}, {len(payload)} bytes"
            )


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
