"""Check a chaos run's history against the delivery guarantees.

The guarantees, for one-to-one messages:

* every acknowledged message is handed out exactly once by every device of
  its recipient and of its sender (the sending device included: the SDK
  hands out its own sends too);
* every device hands out its messages in inbox order, and the messages of
  one sending device to one recipient in the order they were sent;
* no device hands out a message that was never sent, or one meant for
  other users;
* a message without an acknowledgement was either handed out once by every
  one of those devices, or reported failed to its sender and handed out
  by none.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import asdict, dataclass, field

from switchboard.chaos.history import DeviceKey, History, SendRecord

__all__ = ["Verdict", "check"]


@dataclass(slots=True)
class Verdict:
    """Counts of a checked history, and every violation found."""

    sent: int = 0
    acked: int = 0
    failed: int = 0
    """Sends the SDK reported as failed."""
    unresolved: int = 0
    """Sends neither acknowledged nor reported failed when the run ended."""
    expected: int = 0
    """Hand-outs the guarantees require: one per message and device concerned."""
    delivered: int = 0
    """Hand-outs of sent messages to devices concerned, duplicates included."""
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    phantom: int = 0
    """Hand-outs of a message never sent, or to a device it was not meant for."""
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def check(history: History) -> Verdict:
    """Return the verdict on ``history``; an empty violation list means it passed."""
    verdict = Verdict(sent=len(history.sends))
    counts = _count_handouts(history, verdict)
    for record in history.sends.values():
        _check_send(history, record, counts, verdict)
    for device in history.received:
        _check_device_order(history, device, verdict)
    _check_store_order(history, verdict)
    verdict.violations += history.client_errors
    return verdict


def _count_handouts(
    history: History, verdict: Verdict
) -> Counter[tuple[bytes, DeviceKey]]:
    """Count hand-outs per (body, device), and flag messages never sent."""
    counts: Counter[tuple[bytes, DeviceKey]] = Counter()
    for device, received in history.received.items():
        for message in received:
            record = history.sends.get(message.body)
            if record is None:
                verdict.phantom += 1
                verdict.violations.append(
                    f"device {_name(device)} handed out message id"
                    f" {message.message_id} with a body that was never sent:"
                    f" {message.body[:60]!r}"
                )
                continue
            if record.acked and message.message_id != record.message_id:
                verdict.duplicated += 1
                verdict.violations.append(
                    f"message {record.body.decode()} was acknowledged as id"
                    f" {record.message_id} but handed out to {_name(device)} as id"
                    f" {message.message_id}: it was stored twice"
                )
            counts[(message.body, device)] += 1
    return counts


def _check_send(
    history: History,
    record: SendRecord,
    counts: Counter[tuple[bytes, DeviceKey]],
    verdict: Verdict,
) -> None:
    concerned = _devices_of(history, record.sender) + _devices_of(
        history, record.recipient
    )
    handouts = {device: counts[(record.body, device)] for device in concerned}
    for device in history.received:
        if device not in handouts and counts[(record.body, device)]:
            verdict.phantom += 1
            verdict.violations.append(
                f"message {record.body.decode()} to user {record.recipient} was"
                f" handed out to {_name(device)}, a device of neither user"
            )
    verdict.delivered += sum(handouts.values())

    if record.acked:
        verdict.acked += 1
    elif record.error:
        verdict.failed += 1
        if any(handouts.values()):
            verdict.violations.append(
                f"message {record.body.decode()} was reported failed to its"
                f" sender ({record.error}) but handed out"
            )
        return
    else:
        verdict.unresolved += 1
        if not any(handouts.values()):
            verdict.lost += len(handouts)
            verdict.violations.append(
                f"message {record.body.decode()} was neither acknowledged, nor"
                " reported failed, nor handed out"
            )
            return

    verdict.expected += len(handouts)
    for device, count in handouts.items():
        if count == 0:
            verdict.lost += 1
            verdict.violations.append(
                f"message {record.body.decode()} (id {record.message_id}) was"
                f" never handed out to {_name(device)}"
            )
        elif count > 1:
            verdict.duplicated += count - 1
            verdict.violations.append(
                f"message {record.body.decode()} (id {record.message_id}) was"
                f" handed out {count} times to {_name(device)}"
            )


def _check_device_order(history: History, device: DeviceKey, verdict: Verdict) -> None:
    """Flag hand-outs out of inbox order, or out of one sender's send order."""
    last_seq = 0
    last_index: dict[tuple[int, str, int], int] = {}
    for message in history.received[device]:
        if message.seq <= last_seq:
            verdict.reordered += 1
            verdict.violations.append(
                f"device {_name(device)} handed out seq {message.seq} after"
                f" seq {last_seq}"
            )
        last_seq = max(last_seq, message.seq)

        record = history.sends.get(message.body)
        if record is None:
            continue
        stream = (record.sender, record.device, record.recipient)
        previous = last_index.get(stream, -1)
        if record.index < previous:
            verdict.reordered += 1
            verdict.violations.append(
                f"device {_name(device)} handed out {record.body.decode()} after"
                f" send number {previous} of the same sender and recipient"
            )
        last_index[stream] = max(previous, record.index)


def _check_store_order(history: History, verdict: Verdict) -> None:
    """Flag acknowledged sends that the server stored out of call order."""
    # NOTE: this takes message ids to grow in store order, which holds for the
    # SQLite store (rowids, no deletes); a store with other ids needs seqs here.
    streams: dict[tuple[int, str, int], list[SendRecord]] = {}
    for record in history.sends.values():
        if record.acked:
            key = (record.sender, record.device, record.recipient)
            streams.setdefault(key, []).append(record)
    for records in streams.values():
        records.sort(key=lambda record: record.index)
        for earlier, later in itertools.pairwise(records):
            if later.message_id < earlier.message_id:
                verdict.reordered += 1
                verdict.violations.append(
                    f"message {later.body.decode()} was stored before"
                    f" {earlier.body.decode()}, which was sent first"
                )


def _devices_of(history: History, user_id: int) -> list[DeviceKey]:
    return [(user_id, device) for device in history.devices.get(user_id, [])]


def _name(device: DeviceKey) -> str:
    return f"{device[0]}/{device[1]}"
