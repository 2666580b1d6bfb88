"""Client commands of the CLI: accounts, login, sending, inbox, history, chat,
conversations, reads and changes to sent messages.

Each command is a coroutine that takes the parsed arguments and returns the
exit status. The token, device id and cursor live in
``$SWITCHBOARD_HOME/state.json`` (``~/.switchboard`` by default).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import secrets
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from switchboard.cli.conversation import Conversation, print_signals
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
from switchboard.cli.terminal import escape
from switchboard.client import (
    ApiError,
    Changed,
    Client,
    Event,
    FileStateStore,
    Group,
    Media,
    Message,
    NotLoggedIn,
    SendRejected,
    Sent,
    ServerUnreachable,
    User,
    check_base_url,
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
    "open_client",
    "print_message",
    "read",
    "recall",
    "search",
    "send",
]

STATE_FILE = "state.json"

logger = logging.getLogger("switchboard.cli")


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
    try:
        check_base_url(args.server)
    except ValueError as exc:
        raise UsageError(f"{exc} (from --server or SWITCHBOARD_SERVER)") from None
    path = home_dir() / STATE_FILE
    try:
        return Client(args.server, state=FileStateStore(path))
    except ValueError as exc:
        raise CommandError(f"{exc}; delete the file and log in again") from exc


@contextlib.asynccontextmanager
async def open_client(args: argparse.Namespace) -> AsyncIterator[Client]:
    """Yield a client with the stored token; close it when the block ends.

    Raises NotLoggedIn when no token is stored.
    """
    async with _client(args) as client:
        _require_login(client)
        yield client


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
    admin_key = None
    if args.admin_key_file is not None:
        try:
            admin_key = args.admin_key_file.read_bytes()
        except OSError as exc:
            raise UsageError(
                f"cannot read the admin key file {args.admin_key_file}: {exc}"
            ) from exc
    async with _client(args) as client:
        user = await client.create_account(args.name, password, admin_key=admin_key)
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


async def password(args: argparse.Namespace) -> int:
    if args.password_stdin:
        current = sys.stdin.readline().rstrip("\r\n")
        new = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        current = getpass.getpass("current password: ")
        new = getpass.getpass("new password: ")
    else:
        raise UsageError(
            "stdin is not a terminal: pass the current and the new password on"
            " two lines of stdin with --password-stdin"
        )
    if not current or not new:
        raise UsageError(
            "a password is empty: write the current and the new password to"
            " stdin, each followed by a newline"
        )
    async with open_client(args) as client:
        await client.change_password(current, new)
        name = client.name
    print(f"changed the password of {name}; its other devices are logged out")
    return 0


def _check_send_args(args: argparse.Namespace) -> None:
    if (args.to is None) == (args.group is None):
        raise UsageError("give either --to NAME or --group ID")
    if args.mention and args.group is None:
        raise UsageError("--mention is only for group messages (--group ID)")
    if (args.text is None) == (args.file is None):
        raise UsageError("give either TEXT or --file PATH")
    if args.text is not None and (not args.text or args.text.isspace()):
        raise UsageError(
            "the message is empty: give TEXT with at least one character that"
            " is not whitespace"
        )


async def send(args: argparse.Namespace) -> int:
    _check_send_args(args)
    async with open_client(args) as client:
        # Looking the target up first turns an unknown name or group into a
        # clear error before anything is uploaded.
        target: User | Group
        if args.group is not None:
            target = await client.group(args.group)
        else:
            target = await client.get_user(args.to)
        media = None
        if args.file is not None:
            media = await client.upload(args.file)
        await client.connect(args.transport, timeout=args.timeout)
        sent = await _send_in_time(client, target, args, media)
    if args.json:
        item = sent_json(sent, target.name)
        if media is not None:
            item["media"] = media_json(media)
        print_json(item)
        return 0
    what = "message" if media is None else f"{describe_media(media)} as message"
    where = target.name if isinstance(target, User) else f"group {target.name}"
    print(escape(f"sent {what} {sent.id} to {where}"))
    return 0


async def _send_in_time(
    client: Client, target: User | Group, args: argparse.Namespace, media: Media | None
) -> Sent:
    try:
        async with asyncio.timeout(args.timeout):
            if isinstance(target, Group) and media is not None:
                return await client.send_group_media(target.id, media)
            if isinstance(target, Group):
                return await client.send_group(
                    target.id, args.text, mentions=args.mention
                )
            if media is not None:
                return await client.send_media(target.id, media)
            return await client.send(target.id, args.text)
    except TimeoutError:
        check = f"--group {args.group}" if args.group is not None else args.to
        raise CommandError(
            f"the server did not acknowledge the message within {args.timeout:g} s;"
            f" it may still be stored: check with 'switchboard history {check}'"
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
    print(f"downloaded {describe_media(media)} to {escape(str(output))}")
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
            elif isinstance(event, Message):
                await print_message(client, event, as_json=False)
            else:
                print(format_event(event, _name_lookup(client)), flush=True)
    return 0


def _name_lookup(client: Client) -> Callable[[int], str]:
    def name_of(user_id: int) -> str:
        return client.cached_name(user_id) or f"user#{user_id}"

    return name_of


async def print_message(
    client: Client,
    message: Message,
    as_json: bool,
    *,
    peer: str | None = None,
    group: int | None = None,
) -> None:
    """Print one message as a JSON object or as an escaped line of text."""
    if as_json:
        print_json(message_json(message))
        return
    names: dict[int, str] = {}
    notice = message.notice
    if notice is not None:
        try:
            names = await client.user_names([notice.actor_id, *notice.user_ids])
        except (ServerUnreachable, ApiError) as exc:
            logger.warning("looking up the names in a group notice failed: %s", exc)
    print(format_message(message, peer=peer, group=group, names=names), flush=True)


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
    if (args.name is None) == (args.group is None):
        raise UsageError("give either NAME or --group ID")
    async with open_client(args) as client:
        if args.group is not None:
            page = await client.group_history(
                args.group, before=args.before, limit=args.limit
            )
        else:
            page = await client.history(args.name, before=args.before, limit=args.limit)
        # The API returns newest first; print oldest first, like a conversation.
        for message in reversed(page.messages):
            await print_message(client, message, args.json)
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


async def search(args: argparse.Namespace) -> int:
    if args.name is not None and args.group is not None:
        raise UsageError("give at most one of --with NAME and --group ID")
    async with open_client(args) as client:
        page = await client.search(
            args.text,
            cursor=args.cursor,
            limit=args.limit,
            peer=args.name,
            group=args.group,
        )
        for message in page.messages:
            await print_message(client, message, args.json)
    if page.next_cursor is not None:
        print(
            f"(more matches: pass --cursor {page.next_cursor})",
            file=sys.stderr,
        )
    return 0


async def chat(args: argparse.Namespace) -> int:
    if (args.name is None) == (args.group is None):
        raise UsageError("give either NAME or --group ID")
    async with open_client(args) as client:
        conversation = await Conversation.open(client, args)
        await client.connect(args.transport, timeout=args.timeout)
        print(
            f"chatting with {escape(conversation.title)}: type a line and press"
            " Enter to send it; end with Ctrl-D",
            file=sys.stderr,
        )
        sent_ids: set[int] = set()
        sending = asyncio.Lock()
        printer = asyncio.create_task(
            _print_incoming(client, conversation, sent_ids, sending)
        )
        status = asyncio.create_task(print_signals(client, conversation))
        await conversation.watch(client)
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
                if text and not text.isspace():
                    async with sending:
                        await _send_line(
                            client, conversation, text, sent_ids, args.timeout
                        )
        finally:
            printer.cancel()
            status.cancel()
    return 0


async def _send_line(
    client: Client,
    conversation: Conversation,
    text: str,
    sent_ids: set[int],
    ack_within: float,
) -> None:
    """Send one typed line; a rejected line is reported and the chat goes on.

    Raises CommandError when the server does not acknowledge the line within
    ``ack_within`` seconds, for example because it is down.
    """
    try:
        async with asyncio.timeout(ack_within):
            sent = await conversation.send(client, text)
    except SendRejected as exc:
        print(
            escape(f"switchboard: the line was not sent: {exc.reason}"),
            file=sys.stderr,
            flush=True,
        )
        return
    except TimeoutError:
        raise CommandError(
            f"the server did not acknowledge the last line within {ack_within:g} s"
            " (is it running?); it may still be stored: check with"
            f" '{conversation.history_command}'"
        ) from None
    sent_ids.add(sent.id)


async def _print_incoming(
    client: Client,
    conversation: Conversation,
    sent_ids: set[int],
    sending: asyncio.Lock,
) -> None:
    peer = conversation.peer.name if conversation.peer is not None else None
    group = conversation.group.id if conversation.group is not None else None
    async for message in client.messages():
        if message.outgoing:
            # Wait for a send in progress, because its receipt shows whether
            # this message is the line just typed (the terminal shows it).
            async with sending:
                pass
            if message.id in sent_ids:
                continue
        conversation.message_arrived(message)
        await print_message(client, message, False, peer=peer, group=group)


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
