"""Client commands of the CLI: accounts, login, sending, inbox, history, chat,
conversations, reads and changes to sent messages.

Each command is a coroutine that takes the parsed arguments and returns the
exit status. The token, device id and cursor live in
``$SWITCHBOARD_HOME/state.json`` (``~/.switchboard`` by default).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import secrets
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from switchboard.cli.output import (
    changed_json,
    conversation_json,
    describe_media,
    event_json,
    format_conversation,
    format_event,
    format_message,
    media_json,
    message_json,
    print_json,
    sent_json,
)
from switchboard.client import (
    Changed,
    Client,
    Event,
    FileStateStore,
    Media,
    NotLoggedIn,
    Sent,
    User,
)

__all__ = [
    "STATE_FILE",
    "CommandError",
    "UsageError",
    "account_create",
    "chat",
    "conversations",
    "delete",
    "download",
    "edit",
    "history",
    "home_dir",
    "inbox",
    "login",
    "logout",
    "read",
    "recall",
    "send",
]

STATE_FILE = "state.json"


class UsageError(Exception):
    """The command line is wrong; the CLI exits with status 2."""


class CommandError(Exception):
    """An expected failure, with a message for the user; the CLI exits with 1."""


def home_dir() -> Path:
    """Return ``$SWITCHBOARD_HOME``, or ``~/.switchboard`` when it is unset."""
    configured = os.environ.get("SWITCHBOARD_HOME")
    if configured:
        return Path(configured)
    return Path.home() / ".switchboard"


def _client(args: argparse.Namespace) -> Client:
    path = home_dir() / STATE_FILE
    try:
        return Client(args.server, state=FileStateStore(path))
    except ValueError as exc:
        raise CommandError(f"{exc}; delete the file and log in again") from exc


def _require_login(client: Client) -> None:
    if not client.logged_in:
        raise NotLoggedIn(f"not logged in (no token in {home_dir() / STATE_FILE})")


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("password: ")
    else:
        raise UsageError(
            "stdin is not a terminal: pass the password on stdin with --password-stdin"
        )
    if not password:
        raise UsageError("the password is empty: write it to stdin, then a newline")
    return password


async def account_create(args: argparse.Namespace) -> int:
    password = _read_password(args)
    async with _client(args) as client:
        user = await client.create_account(args.name, password)
    print(f"created account {user.name} (id {user.id})")
    return 0


async def login(args: argparse.Namespace) -> int:
    password = _read_password(args)
    async with _client(args) as client:
        device = args.device or client.device or f"cli-{secrets.token_hex(4)}"
        result = await client.login(
            args.name, password, device=device, platform=args.platform
        )
    print(f"logged in as {args.name} (id {result.user_id}) on device {result.device}")
    return 0


async def logout(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        _require_login(client)
        name = client.name
        await client.logout()
    print(f"logged out {name}")
    return 0


async def send(args: argparse.Namespace) -> int:
    if (args.text is None) == (args.file is None):
        raise UsageError("give either TEXT or --file PATH")
    async with _client(args) as client:
        _require_login(client)
        recipient = await client.get_user(args.to)
        media = None
        if args.file is not None:
            media = await client.upload(args.file)
        await client.connect(args.transport, timeout=args.timeout)
        sent = await _send_in_time(client, recipient, args, media)
    if args.json:
        item = sent_json(sent, recipient.name)
        if media is not None:
            item["media"] = media_json(media)
        print_json(item)
    elif media is not None:
        print(f"sent {describe_media(media)} as message {sent.id} to {recipient.name}")
    else:
        print(f"sent message {sent.id} to {recipient.name}")
    return 0


async def _send_in_time(
    client: Client, recipient: User, args: argparse.Namespace, media: Media | None
) -> Sent:
    try:
        async with asyncio.timeout(args.timeout):
            if media is not None:
                return await client.send_media(recipient.id, media)
            return await client.send(recipient.id, args.text)
    except TimeoutError:
        raise CommandError(
            f"the server did not acknowledge the message within {args.timeout:g} s;"
            f" it may still be stored: check with 'switchboard history {args.to}'"
        ) from None


async def download(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        _require_login(client)
        media = await client.media_urls(args.media_id)
        output = args.output or Path(_local_name(media))
        if args.output is None and output.exists():
            raise CommandError(
                f"{output} exists; pass --output PATH to choose another file"
            )
        await client.download(args.media_id, output)
    print(f"downloaded {describe_media(media)} to {output}")
    return 0


def _local_name(media: Media) -> str:
    # The server removes path separators from names. Taking the last
    # component again keeps a hostile server from choosing the directory.
    name = Path(media.name or "").name
    return name if name not in ("", ".", "..") else media.id


async def inbox(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        _require_login(client)
        await client.health()
        await client.connect(args.transport, timeout=args.timeout)
        async for event in _inbox_events(client, args.wait, args.timeout):
            if args.json:
                print_json(event_json(event))
            else:
                print(format_event(event, _name_lookup(client)), flush=True)
    return 0


def _name_lookup(client: Client) -> Callable[[int], str]:
    def name_of(user_id: int) -> str:
        return client.cached_name(user_id) or f"user#{user_id}"

    return name_of


async def _inbox_events(
    client: Client, wait: float, catch_up_timeout: float
) -> AsyncIterator[Event]:
    # First everything the server held at connect time, then whatever
    # arrives until `wait` seconds from now.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        remaining = deadline - loop.time()
        if client.caught_up and remaining <= 0:
            return
        timeout = remaining if client.caught_up else catch_up_timeout
        try:
            async with asyncio.timeout(timeout):
                event = await client.next_event()
        except TimeoutError:
            if client.caught_up:
                continue
            raise CommandError(
                f"the inbox did not arrive within {catch_up_timeout:g} s;"
                " try again, or raise --timeout"
            ) from None
        yield event


async def history(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        _require_login(client)
        page = await client.history(args.name, before=args.before, limit=args.limit)
    # The API returns newest first; print oldest first, like a conversation.
    for message in reversed(page.messages):
        if args.json:
            print_json(message_json(message))
        else:
            print(format_message(message))
    if page.has_more and not args.json:
        oldest = page.messages[-1].id
        print(f"(older messages exist: pass --before {oldest})", file=sys.stderr)
    return 0


async def conversations(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        _require_login(client)
        page = await client.conversations(limit=args.limit, before=args.before)
    for conversation in page.conversations:
        if args.json:
            print_json(conversation_json(conversation))
        else:
            print(format_conversation(conversation))
    if not args.json:
        print(f"{page.total_unread} unread in all conversations", file=sys.stderr)
        if page.has_more:
            last = page.conversations[-1].last
            before = "" if last is None else f": pass --before {last.id}"
            print(f"(older conversations exist{before})", file=sys.stderr)
    return 0


async def read(args: argparse.Namespace) -> int:
    if (args.name is None) == (args.group is None):
        raise UsageError("give either NAME or --group ID")
    async with _client(args) as client:
        _require_login(client)
        changed = await client.mark_read(args.name, group=args.group, up_to=args.up_to)
    where = args.name or f"group {args.group}"
    if args.json:
        print_json(changed_json(args.up_to or 0, changed))
    elif changed.changed:
        print(f"read {where} up to message {changed.read_id}; {changed.unread} unread")
    else:
        print(f"nothing new to read in {where}; {changed.unread} unread")
    return 0


async def recall(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        _require_login(client)
        changed = await client.recall(args.message_id)
    _print_change(args, changed, "recalled", "was recalled before")
    return 0


async def edit(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        _require_login(client)
        changed = await client.edit(args.message_id, args.text)
    _print_change(args, changed, "edited", "has this text already")
    return 0


async def delete(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        _require_login(client)
        changed = await client.delete(args.message_id)
    _print_change(args, changed, "deleted for you", "was deleted before")
    return 0


def _print_change(
    args: argparse.Namespace, changed: Changed, done: str, unchanged: str
) -> None:
    if args.json:
        print_json(changed_json(args.message_id, changed))
    elif changed.changed:
        print(f"message {args.message_id} {done}")
    else:
        print(f"message {args.message_id} {unchanged}; nothing changed")


async def chat(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        _require_login(client)
        peer = await client.get_user(args.name)
        await client.connect(args.transport, timeout=args.timeout)
        print(
            f"chatting with {peer.name}: type a line and press Enter to send it;"
            " end with Ctrl-D",
            file=sys.stderr,
        )
        sent_ids: set[int] = set()
        sending = asyncio.Lock()
        printer = asyncio.create_task(
            _print_incoming(client, peer.name, sent_ids, sending)
        )
        lines = _read_stdin_lines()
        try:
            while True:
                next_line = asyncio.create_task(lines.get())
                await asyncio.wait(
                    {next_line, printer}, return_when=asyncio.FIRST_COMPLETED
                )
                if printer.done():
                    next_line.cancel()
                    printer.result()  # raises why the session ended
                    break
                line = next_line.result()
                if line is None:
                    break
                text = line.rstrip("\r\n")
                if text:
                    async with sending:
                        sent = await client.send(peer.id, text)
                        sent_ids.add(sent.id)
        finally:
            printer.cancel()
    return 0


async def _print_incoming(
    client: Client, peer: str, sent_ids: set[int], sending: asyncio.Lock
) -> None:
    async for message in client.messages():
        if message.outgoing:
            # Wait for a send in progress, because its receipt shows whether
            # this message is the line just typed (the terminal shows it).
            async with sending:
                pass
            if message.id in sent_ids:
                continue
        print(format_message(message, peer=peer), flush=True)


def _read_stdin_lines() -> asyncio.Queue[str | None]:
    """Start reading stdin; the queue gets each line, then None at the end.

    A daemon thread reads, so that a read blocked on a terminal never keeps
    the process alive after the chat ends.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        try:
            for line in sys.stdin:
                loop.call_soon_threadsafe(queue.put_nowait, line)
            loop.call_soon_threadsafe(queue.put_nowait, None)
        except RuntimeError:
            return  # the event loop closed: the chat is over

    threading.Thread(target=read, name="stdin-reader", daemon=True).start()
    return queue
