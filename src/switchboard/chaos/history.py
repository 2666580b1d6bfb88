"""The history of a chaos run: what each device sent, got acknowledged and received.

Every message body is unique in a run (``sender/device/index``), so the
checker can match what was received to what was sent even when a message
was never acknowledged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DeviceKey", "History", "Received", "SendRecord"]

DeviceKey = tuple[int, str]
"""A device: its user's id and its device id."""


@dataclass(slots=True)
class SendRecord:
    """One call to ``Client.send`` and how it ended."""

    sender: int
    device: str
    index: int
    """Position among the sending device's sends, from 0, in call order."""
    recipient: int
    body: bytes
    message_id: int = 0
    """Server message id from the SendAck; 0 until acknowledged."""
    client_id: int = 0
    error: str = ""
    """Why the SDK reported the send as failed; empty if it did not."""

    @property
    def acked(self) -> bool:
        return self.message_id != 0


@dataclass(frozen=True, slots=True)
class Received:
    """One message a device handed out, in the order it handed them out."""

    message_id: int
    seq: int
    sender: int
    recipient: int
    body: bytes


@dataclass(slots=True)
class History:
    """Everything the run's clients did, for the checker."""

    devices: dict[int, list[str]] = field(default_factory=dict)
    """Device ids of each user."""
    sends: dict[bytes, SendRecord] = field(default_factory=dict)
    """Every send, by body."""
    received: dict[DeviceKey, list[Received]] = field(default_factory=dict)
    client_errors: list[str] = field(default_factory=list)
    """Failures of a client as a whole, such as a session the SDK gave up."""

    def add_device(self, user_id: int, device: str) -> None:
        self.devices.setdefault(user_id, []).append(device)
        self.received[(user_id, device)] = []

    def record_send(self, record: SendRecord) -> None:
        if record.body in self.sends:
            raise ValueError(f"body {record.body!r} was sent twice; bodies are ids")
        self.sends[record.body] = record

    def record_received(self, device: DeviceKey, message: Received) -> None:
        self.received[device].append(message)
