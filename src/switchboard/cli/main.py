"""The ``switchboard`` command: run the server, or chat from a terminal.

Expected failures (server unreachable, wrong password, unknown user, not
logged in) print one line to stderr and exit with status 1; usage errors exit
with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from switchboard.chaos.cli import add_verify
from switchboard.cli import commands
from switchboard.cli.commands import STATE_FILE, CommandError, UsageError
from switchboard.cli.groups import add_group_parser, group_id
from switchboard.cli.terminal import escape
from switchboard.client import (
    DEFAULT_BASE_URL,
    PLATFORMS,
    ApiError,
    ChangeRejected,
    Forbidden,
    GroupNotFound,
    InvalidCredentials,
    NameTaken,
    NotLoggedIn,
    SendRejected,
    ServerUnreachable,
    SessionEnded,
    Unauthorized,
    UserNotFound,
)
from switchboard.cluster.cli import add_cluster_commands
from switchboard.config import Settings, parse_address
from switchboard.errors import ErrorCode, SwitchboardError
from switchboard.tls import server_context

__all__ = ["build_parser", "main"]

LOG_LEVELS = ("debug", "info", "warning", "error")
LOGIN_HINT = "run 'switchboard login NAME --password-stdin'"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``) and exit."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        sys.exit(_serve(args, parser))
    if args.command == "bench":
        from switchboard.bench import run as run_bench

        sys.exit(run_bench(args, argv))
    if hasattr(args, "run_server"):  # the clustered mode's role commands
        sys.exit(args.run_server(args, parser))
    _configure_logging(args.log_level)
    try:
        status = asyncio.run(args.handler(args))
    except UsageError as exc:
        parser.exit(2, f"switchboard: error: {exc}\n")
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        # The reader of stdout went away (as in '| head'). Python would report
        # the failed flush at exit, so stdout is pointed at /dev/null first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except (SwitchboardError, CommandError, OSError) as exc:
        parser.exit(1, f"switchboard: error: {escape(describe_error(exc, args))}\n")
    sys.exit(status)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchboard",
        description="Run a Switchboard chat server, or chat with one from a terminal.",
    )
    subcommands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND"
    )
    _add_serve(subcommands)

    # --server is accepted before and after the command name. Its default
    # is set on the top-level parser only, so that the command's parser does
    # not overwrite a value given before the command name.
    server_help = (
        "base URL of the server's HTTP API"
        f" (default: $SWITCHBOARD_SERVER, else {DEFAULT_BASE_URL})"
    )
    parser.add_argument(
        "--server",
        metavar="URL",
        default=os.environ.get("SWITCHBOARD_SERVER") or DEFAULT_BASE_URL,
        help=server_help,
    )
    client = argparse.ArgumentParser(add_help=False)
    client.add_argument(
        "--server", metavar="URL", default=argparse.SUPPRESS, help=server_help
    )
    client.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="warning",
        help="client log messages to show on stderr (default: warning)",
    )
    socket = argparse.ArgumentParser(add_help=False, parents=[client])
    socket.add_argument(
        "--transport",
        choices=("tcp", "ws"),
        default="tcp",
        help="connect to the gateway over TCP or WebSocket (default: tcp)",
    )
    socket.add_argument(
        "--timeout",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="timeout in seconds to connect, and for each response (default: 10)",
    )
    _add_account(subcommands, client)
    _add_login(subcommands, client)
    _add_messaging(subcommands, client, socket)
    add_verify(subcommands)
    # Only argparse is imported here; the load generator loads when bench runs.
    from switchboard.bench.options import add_parser as add_bench_parser

    add_bench_parser(subcommands)
    _add_conversations(subcommands, client)
    _add_changes(subcommands, client)
    add_group_parser(subcommands, client)
    add_cluster_commands(subcommands)
    return parser


def _add_serve(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    defaults = Settings()
    serve = subcommands.add_parser(
        "serve",
        help="run the server until SIGINT or SIGTERM",
        description="Run the server in the foreground. SWITCHBOARD_<SETTING>"
        " environment variables (for example SWITCHBOARD_DRAIN_WINDOW=5) set any"
        " setting; an option given here wins over its variable.",
    )
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"directory of the database (default: {defaults.data_dir})",
    )
    serve.add_argument(
        "--tcp",
        default=None,
        metavar="HOST:PORT",
        help="address of the TCP gateway"
        f" (default: {defaults.tcp_host}:{defaults.tcp_port})",
    )
    serve.add_argument(
        "--http",
        default=None,
        metavar="HOST:PORT",
        help="address of the HTTP API and WebSocket gateway"
        f" (default: {defaults.http_host}:{defaults.http_port})",
    )
    serve.add_argument(
        "--heartbeat",
        type=_positive_int,
        default=None,
        metavar="S",
        help="default heartbeat interval for clients, in seconds"
        f" (default: {defaults.heartbeat})",
    )
    serve.add_argument(
        "--max-heartbeat",
        type=_positive_int,
        default=None,
        metavar="S",
        help="maximum heartbeat interval a client may request, in seconds"
        f" (default: {defaults.max_heartbeat})",
    )
    serve.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=None,
        help=f"server log level (default: {defaults.log_level})",
    )
    serve.add_argument(
        "--tls-cert",
        default=None,
        metavar="PEM",
        help="certificate chain file; with --tls-key, serve TLS on the TCP"
        " gateway and HTTPS and WSS on the HTTP port (default: no TLS)",
    )
    serve.add_argument(
        "--tls-key", default=None, metavar="PEM", help="private key of --tls-cert"
    )


def _add_account(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
    client: argparse.ArgumentParser,
) -> None:
    account = subcommands.add_parser("account", help="manage accounts")
    actions = account.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create",
        parents=[client],
        help="create an account",
        description="Create an account. Names are 1 to 32 of a-z, 0-9, '_', '.'"
        " and '-'; passwords are 8 to 1024 characters.",
    )
    create.add_argument("name", metavar="NAME")
    _add_password_option(create)
    create.add_argument(
        "--admin-key-file",
        type=Path,
        metavar="PATH",
        help="the server's admin key (DATA_DIR/admin.key), needed for a name"
        " listed in SWITCHBOARD_ADMINS",
    )
    create.set_defaults(handler=commands.account_create)


def _add_login(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
    client: argparse.ArgumentParser,
) -> None:
    login = subcommands.add_parser(
        "login",
        parents=[client],
        help="log in and store the token",
        description="Log in and store the token in $SWITCHBOARD_HOME"
        f"/{STATE_FILE} (default home: ~/.switchboard).",
    )
    login.add_argument("name", metavar="NAME")
    _add_password_option(login)
    login.add_argument(
        "--device",
        metavar="ID",
        help="device id: 1 to 64 of A-Z, a-z, 0-9, '_', '.', ':' and '-'"
        " (default: the last one used, else a new one)",
    )
    login.add_argument(
        "--platform",
        choices=tuple(PLATFORMS),
        default="cli",
        help="platform reported to the server (default: cli)",
    )
    login.set_defaults(handler=commands.login)

    logout = subcommands.add_parser(
        "logout", parents=[client], help="revoke the stored token"
    )
    logout.set_defaults(handler=commands.logout)

    password = subcommands.add_parser(
        "password",
        parents=[client],
        help="change the password and log out the other devices",
        description="Change the logged-in account's password. Every other"
        " token of the account is revoked; this one stays valid.",
    )
    password.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the current password from the first line of stdin and the"
        " new one from the second (default: prompt on the terminal)",
    )
    password.set_defaults(handler=commands.password)


def _add_messaging(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
    client: argparse.ArgumentParser,
    socket: argparse.ArgumentParser,
) -> None:
    send = subcommands.add_parser(
        "send",
        parents=[socket],
        help="send a message or a file",
        description="Send TEXT to a user or a group, or with --file upload a file"
        " and send a message that refers to it.",
    )
    send.add_argument("--to", metavar="NAME", help="recipient's name")
    send.add_argument(
        "--group", type=group_id, metavar="ID", help="send to this group instead"
    )
    send.add_argument(
        "--mention",
        action="append",
        default=[],
        metavar="NAME",
        help="mention this group member; repeat for more",
    )
    send.add_argument("text", metavar="TEXT", nargs="?")
    send.add_argument(
        "--file",
        type=Path,
        metavar="PATH",
        help="upload this file and send it instead of TEXT (the server accepts"
        " up to 100 MB by default)",
    )
    send.add_argument("--json", action="store_true", help="print the receipt as JSON")
    send.set_defaults(handler=commands.send)

    download = subcommands.add_parser(
        "download",
        parents=[client],
        help="download a file sent in a message",
        description="Download the file with MEDIA_ID, the 'media' id that"
        " 'inbox --json' and 'history --json' print.",
    )
    download.add_argument("media_id", metavar="MEDIA_ID")
    download.add_argument(
        "--output",
        type=Path,
        metavar="PATH",
        help="file to write (default: the file's name, else MEDIA_ID, in the"
        " current directory; an existing file is not replaced)",
    )
    download.set_defaults(handler=commands.download)

    inbox = subcommands.add_parser(
        "inbox",
        parents=[socket],
        help="print new messages",
        description="Print the messages after this device's cursor and advance it.",
    )
    inbox.add_argument(
        "--json", action="store_true", help="print one JSON object per message"
    )
    inbox.add_argument(
        "--wait",
        type=_non_negative_float,
        default=0.0,
        metavar="SECONDS",
        help="keep printing new messages for this long (default: 0)",
    )
    inbox.set_defaults(handler=commands.inbox)

    history = subcommands.add_parser(
        "history",
        parents=[client],
        help="print a conversation",
        description="Print the latest messages with NAME, or of a group with"
        " --group ID, oldest first.",
    )
    history.add_argument("name", metavar="NAME", nargs="?")
    history.add_argument(
        "--group", type=group_id, metavar="ID", help="print this group's messages"
    )
    history.add_argument(
        "--json", action="store_true", help="print one JSON object per message"
    )
    history.add_argument(
        "--limit",
        type=_positive_int,
        default=50,
        metavar="N",
        help="number of messages, at most 500 (default: 50)",
    )
    history.add_argument(
        "--before",
        type=_positive_int,
        metavar="ID",
        help="print only messages older than this message id",
    )
    history.set_defaults(handler=commands.history)

    search = subcommands.add_parser(
        "search",
        parents=[client],
        help="search your messages",
        description="Print your text messages that contain every word of TEXT,"
        " newest first. Each word matches the words that start with it,"
        " ignoring case and accents.",
    )
    search.add_argument("text", metavar="TEXT")
    search.add_argument(
        "--json", action="store_true", help="print one JSON object per message"
    )
    search.add_argument(
        "--limit",
        type=_positive_int,
        default=20,
        metavar="N",
        help="number of messages, at most 100 (default: 20)",
    )
    search.add_argument(
        "--cursor",
        metavar="CURSOR",
        help="continue where the previous search stopped; it prints the cursor",
    )
    search.add_argument(
        "--with",
        dest="name",
        metavar="NAME",
        help="search only the conversation with this user",
    )
    search.add_argument(
        "--group", type=group_id, metavar="ID", help="search only this group"
    )
    search.set_defaults(handler=commands.search)

    chat = subcommands.add_parser(
        "chat",
        parents=[socket],
        help="chat interactively",
        description="Print messages as they arrive and send each line of stdin"
        " to NAME, or to a group with --group ID; end with Ctrl-D (end of"
        " input). Status lines on stderr show when the other side is typing,"
        " and whether NAME is online.",
    )
    chat.add_argument("name", metavar="NAME", nargs="?")
    chat.add_argument(
        "--group", type=group_id, metavar="ID", help="chat in this group instead"
    )
    chat.set_defaults(handler=commands.chat)


def _add_conversations(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
    client: argparse.ArgumentParser,
) -> None:
    conversations = subcommands.add_parser(
        "conversations",
        parents=[client],
        help="list conversations with unread counts",
        description="List the conversations, the most recent first, with their"
        " unread counts and last messages. The total of unread messages goes"
        " to stderr.",
    )
    conversations.add_argument(
        "--json", action="store_true", help="print one JSON object per conversation"
    )
    conversations.add_argument(
        "--limit",
        type=_positive_int,
        default=50,
        metavar="N",
        help="number of conversations, at most 200 (default: 50)",
    )
    conversations.add_argument(
        "--before",
        type=_positive_int,
        metavar="ID",
        help="list only conversations whose last message is older than this id",
    )
    conversations.set_defaults(handler=commands.conversations)

    read = subcommands.add_parser(
        "read",
        parents=[client],
        help="mark a conversation as read",
        description="Mark the conversation with NAME, or the group --group ID,"
        " as read on all of this account's devices; the other side is told.",
    )
    read.add_argument("name", metavar="NAME", nargs="?")
    read.add_argument("--group", type=_positive_int, metavar="ID", help="group id")
    read.add_argument(
        "--up-to",
        type=_positive_int,
        metavar="MESSAGE_ID",
        help="read only up to this message (default: the latest)",
    )
    read.add_argument("--json", action="store_true", help="print the result as JSON")
    read.set_defaults(handler=commands.read)


def _add_changes(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
    client: argparse.ArgumentParser,
) -> None:
    recall = subcommands.add_parser(
        "recall",
        parents=[client],
        help="recall a message you sent, for everyone",
        description="Recall MESSAGE_ID for everyone who received it. Only its"
        " sender may, within the server's recall window (2 minutes by default).",
    )
    recall.add_argument("message_id", type=_positive_int, metavar="MESSAGE_ID")
    recall.add_argument("--json", action="store_true", help="print the result as JSON")
    recall.set_defaults(handler=commands.recall)

    edit = subcommands.add_parser(
        "edit",
        parents=[client],
        help="replace the text of a message you sent",
        description="Replace the text of MESSAGE_ID with TEXT for everyone who"
        " received it. Only its sender may.",
    )
    edit.add_argument("message_id", type=_positive_int, metavar="MESSAGE_ID")
    edit.add_argument("text", metavar="TEXT")
    edit.add_argument("--json", action="store_true", help="print the result as JSON")
    edit.set_defaults(handler=commands.edit)

    delete = subcommands.add_parser(
        "delete",
        parents=[client],
        help="delete a message for yourself",
        description="Delete MESSAGE_ID from this account's history and"
        " conversation list, on all of its devices. Others keep it.",
    )
    delete.add_argument("message_id", type=_positive_int, metavar="MESSAGE_ID")
    delete.add_argument("--json", action="store_true", help="print the result as JSON")
    delete.set_defaults(handler=commands.delete)


def _add_password_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin"
        " (default: prompt on the terminal)",
    )


def _serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    # Defaults, then SWITCHBOARD_<FIELD> variables, then the options given.
    settings = Settings()
    try:
        settings.apply_environ(os.environ)
        if args.tcp is not None:
            settings.tcp_host, settings.tcp_port = parse_address(args.tcp, 7070)
        if args.http is not None:
            settings.http_host, settings.http_port = parse_address(args.http, 7080)
    except ValueError as exc:
        parser.error(str(exc))
    for name in (
        "data_dir",
        "heartbeat",
        "max_heartbeat",
        "log_level",
        "tls_cert",
        "tls_key",
    ):
        value = getattr(args, name)
        if value is not None:
            setattr(settings, name, value)
    try:
        settings.validate()
        if settings.tls:
            server_context(settings.tls_cert, settings.tls_key)
    except ValueError as exc:
        parser.error(str(exc))
    if settings.data_dir.exists() and not settings.data_dir.is_dir():
        parser.error(
            f"the data directory {settings.data_dir} is a file; pass --data-dir"
            " with the path of a directory (it is created when missing)"
        )

    from switchboard.server import serve

    try:
        serve(settings)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.filename:
            reason = f"{exc.filename}: {reason}"
        print(f"switchboard: error: cannot run the server: {reason}", file=sys.stderr)
        return 1
    return 0


def describe_error(exc: BaseException, args: argparse.Namespace) -> str:
    """Return one line saying what failed, on which value, and what to do."""
    if isinstance(exc, ServerUnreachable):
        return (
            f"{exc}; start it with 'switchboard serve', or pass --server URL"
            " or set SWITCHBOARD_SERVER"
        )
    if isinstance(exc, InvalidCredentials):
        return f"login as {args.name!r} failed: wrong name or password"
    if isinstance(exc, NotLoggedIn):
        return f"{exc}; {LOGIN_HINT} first"
    if isinstance(exc, UserNotFound):
        return f"{exc.message} on {args.server}; check the name"
    if isinstance(exc, GroupNotFound):
        return f"{exc.message}; 'switchboard group list' shows your groups"
    if isinstance(exc, Forbidden):
        return f"not allowed: {exc.message}"
    if isinstance(exc, NameTaken):
        return f"the account name {args.name!r} is taken; choose another name"
    if isinstance(exc, Unauthorized):
        return f"the server rejected the stored token ({exc.message}); {LOGIN_HINT}"
    if isinstance(exc, SessionEnded):
        return _describe_session_end(exc)
    if isinstance(exc, SendRejected) and exc.local:
        return f"the message was not sent: {exc.reason}"
    if isinstance(exc, SendRejected):
        return f"the server rejected the message: {exc.reason}"
    if isinstance(exc, ChangeRejected):
        return f"the server rejected the change ({exc.code.name}): {exc.reason}"
    if isinstance(exc, ApiError):
        return f"the server rejected the request: {exc.message}"
    if isinstance(exc, OSError) and exc.filename:
        return f"cannot use {exc.filename}: {exc.strerror}"
    return str(exc)


def _describe_session_end(exc: SessionEnded) -> str:
    if exc.code is ErrorCode.SESSION_REPLACED:
        return (
            f"the server closed this session: {exc.reason}; close the other"
            " switchboard command, or log in with a different --device"
        )
    if exc.code is ErrorCode.UNSUPPORTED_VERSION:
        return f"the server does not speak this client's protocol: {exc.reason}"
    return f"the server rejected the stored token ({exc.reason}); {LOGIN_HINT}"


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="switchboard: %(levelname)s: %(message)s"
    )
    if level != "debug":
        # httpx logs every request at INFO.
        logging.getLogger("httpx").setLevel(logging.WARNING)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: expected a whole number above 0"
        )
    return value


def _positive_float(text: str) -> float:
    value = _parse_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: expected a number above 0"
        )
    return value


def _non_negative_float(text: str) -> float:
    value = _parse_float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: expected a number of 0 or more"
        )
    return value


def _parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: expected a number"
        ) from None
