"""The asyncio SDK's entry point: :class:`Client`.

A minimal chat client::

    client = Client("http://127.0.0.1:7080", state=FileStateStore("state.json"))
    await client.login("alice", password, device="laptop")
    await client.connect()
    await client.send("bob", "hello")
    async for message in client.messages():
        print(message.sender_name, message.text)
    await client.close()

:meth:`Client.events` yields the changes to messages and conversations
too: recalls, edits, deletions, reads on the user's other devices and read
receipts of other users.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import os
import secrets
import ssl
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar
from urllib.parse import urlsplit

import httpx

from switchboard.client.conversations import ConversationBook
from switchboard.client.errors import (
    ApiError,
    ChangeRejected,
    ClientClosed,
    NotConnected,
    NotLoggedIn,
    SendRejected,
    ServerUnreachable,
    Unauthorized,
    UserNotFound,
)
from switchboard.client.events import PresenceChanged, Signal
from switchboard.client.groups import GroupApi
from switchboard.client.heartbeat import HeartbeatPolicy
from switchboard.client.http import ApiClient
from switchboard.client.inbox import Inbox
from switchboard.client.media import MediaApi
from switchboard.client.models import (
    MEDIA,
    TEXT,
    Changed,
    Conversation,
    ConversationPage,
    Event,
    Gateway,
    Group,
    GroupMember,
    HistoryPage,
    InboxItem,
    Login,
    Media,
    Message,
    ReadCount,
    ReadReceipt,
    SearchPage,
    Sent,
    User,
)
from switchboard.client.session import Session, SessionOptions
from switchboard.client.state import ClientState, MemoryStateStore, StateStore
from switchboard.client.timelines import Timelines
from switchboard.client.transport import TransportFactory, transport_factory
from switchboard.errors import ErrorCode
from switchboard.protocol import pb
from switchboard.tls import client_context

__all__ = [
    "DEFAULT_BASE_URL",
    "PLATFORMS",
    "Client",
    "ClientOptions",
    "check_base_url",
]

logger = logging.getLogger("switchboard.client")

DEFAULT_BASE_URL = "http://127.0.0.1:7080"
DEFAULT_TCP_PORT = 7070
"""Gateway port assumed when discovery fails and no fallback is configured."""

PLATFORMS: dict[str, pb.Platform] = {
    "android": pb.PLATFORM_ANDROID,
    "ios": pb.PLATFORM_IOS,
    "web": pb.PLATFORM_WEB,
    "desktop": pb.PLATFORM_DESKTOP,
    "cli": pb.PLATFORM_CLI,
}
"""Platform names accepted at login and their wire values."""

TRANSPORTS = ("tcp", "ws")

NAME_LOOKUP_RETRY = 30.0
"""Seconds to wait after a failed user-name lookup before trying again."""
NOTICE_NAMES_PREFETCHED = 100
"""Largest number of users a group notice may name for the client to look up
their names before handing it out; the notice that a large group's members
were added may name thousands, whose names user_names() looks up on request."""

_T = TypeVar("_T")

RECEIPT_BACKLOG = 1000
"""Read receipts kept for :meth:`Client.next_event`; older ones are dropped."""
TYPING_REFRESH = 3.0
"""Seconds between two Typing frames for one conversation while typing; the
server's indicators last 6 seconds by default, so one refresh may be lost."""

SIGNALS_KEPT = 1000
"""Events kept for :meth:`Client.next_signal`; older ones are dropped."""


@dataclass(slots=True)
class ClientOptions(SessionOptions):
    """Timeouts of the client. Times are in seconds."""

    tls: ssl.SSLContext | None = None
    """Context that verifies the server of an https:// base URL, which the
    client then reaches over TLS on TCP and WSS as well. None: the system's
    trust store (see :func:`switchboard.tls.client_context`)."""
    http_timeout: float = 10.0
    cursor_flush_interval: float = 1.0
    """Delay between handing out a message and persisting the cursor. After a
    crash, messages handed out in this window are handed out again."""


class Client:
    """A Switchboard chat client for one device.

    ``state`` keeps the token, device id, cursor and client message ids. Use
    a :class:`~switchboard.client.state.FileStateStore` to keep them across
    runs. ``fallback_gateways`` are tried when gateway discovery fails. They
    default to the TCP gateway on port 7070 and the WebSocket gateway at
    ``/v1/ws`` of the base URL's host. Raises ValueError for a ``base_url``
    that is not an http or https URL with a host.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        state: StateStore | None = None,
        fallback_gateways: Sequence[Gateway] | None = None,
        options: ClientOptions | None = None,
        open_transport: TransportFactory | None = None,
        http_transport: httpx.AsyncBaseTransport | None = None,
        heartbeat_policy: HeartbeatPolicy | None = None,
    ) -> None:
        self.base_url = check_base_url(base_url).rstrip("/")
        self._store = state or MemoryStateStore()
        self._state = self._store.load()
        self._options = options or ClientOptions()

        self._fallback_gateways = list(
            default_gateways(self.base_url)
            if fallback_gateways is None
            else fallback_gateways
        )
        # An https:// server serves TLS on every port, so the TCP gateway
        # is reached over TLS too.
        tls = None
        if urlsplit(self.base_url).scheme == "https":
            tls = self._options.tls or client_context()
        self._open_transport = open_transport or transport_factory(tls)
        self._api = ApiClient(
            self.base_url,
            token=self._state.token,
            timeout=self._options.http_timeout,
            transport=http_transport,
            verify=tls or True,
        )
        self._media = MediaApi(
            self.base_url,
            token=lambda: self._api.token,
            timeout=self._options.http_timeout,
            transport=http_transport,
            verify=tls or True,
        )

        self._heartbeat = heartbeat_policy or HeartbeatPolicy()
        self._inbox: Inbox[InboxItem] = Inbox(self._state.cursor)
        self._timelines: Timelines[InboxItem] = _timelines_of(self._state)
        self._timelines_saved = True
        """Whether the timeline cursors in the state file are current."""
        self._book = ConversationBook()
        self._receipts: deque[ReadReceipt] = deque(maxlen=RECEIPT_BACKLOG)
        self._session: Session | None = None
        self._changed = asyncio.Event()
        self._save_lock = asyncio.Lock()
        self._saved_cursor = self._state.cursor
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flush_tasks: set[asyncio.Task[None]] = set()

        self._groups = GroupApi(self._api)
        self._signals: collections.deque[Signal] = collections.deque(
            maxlen=SIGNALS_KEPT
        )
        self._signal_added = asyncio.Event()
        self._presence: dict[int, PresenceChanged] = {}
        self._typing_sent: dict[tuple[int, int], float] = {}
        """(user, group) -> loop time of the last active Typing frame sent."""
        self._names: dict[int, str] = {}
        self._group_names: dict[int, str | None] = {}
        """Names of groups, None for a group this user is not a member of."""
        self._ids: dict[str, int] = {}
        self._lookups: dict[str, asyncio.Future[User]] = {}
        self._name_lookup_after = 0.0
        self._closed = False
        self._remember_self()

    # Identity.

    @property
    def user_id(self) -> int:
        """This user's id; 0 before the first login."""
        return self._state.user_id

    @property
    def name(self) -> str:
        """This user's name; empty before the first login."""
        return self._state.name

    @property
    def device(self) -> str:
        return self._state.device

    @property
    def logged_in(self) -> bool:
        """Whether the state contains a token (it may be expired or revoked)."""
        return self._state.token is not None

    @property
    def cursor(self) -> int:
        """Highest inbox sequence handed out by :meth:`next_message`."""
        return self._state.cursor

    @property
    def connected(self) -> bool:
        return self._session is not None and self._session.connected

    @property
    def caught_up(self) -> bool:
        """Whether every message the server reported so far has been handed out."""
        session = self._session
        return (
            session is not None
            and session.ready
            and self._inbox.delivered >= session.head_seq
            and self._timelines.caught_up()
        )

    async def health(self) -> None:
        """Raise ServerUnreachable or ApiError unless the server's health check
        succeeds."""
        await self._api.health()

    async def create_account(
        self, name: str, password: str, *, admin_key: bytes | None = None
    ) -> User:
        """Create an account; raise NameTaken or InvalidRequest when rejected.

        A name listed in the server's ``admins`` setting needs the server's
        ``admin_key`` (the bytes of ``DATA_DIR/admin.key``), else Forbidden.
        """
        return await self._api.create_account(name, password, admin_key)

    async def login(
        self,
        name: str,
        password: str,
        *,
        device: str | None = None,
        platform: str = "cli",
    ) -> Login:
        """Log in and store the token, closing any open connection first.

        ``device`` defaults to the stored device id, or a new random one. A
        login as another user or device starts from an empty cursor.
        Raises InvalidCredentials for a wrong name or password.
        """
        if platform not in PLATFORMS:
            raise ValueError(
                f"invalid platform {platform!r}: use one of {', '.join(PLATFORMS)}"
            )
        await self._stop_session()
        state = self._state
        device = device or state.device or f"py-{secrets.token_hex(4)}"
        login = await self._api.login(name, password, device, platform)
        if (state.user_id, state.device) != (login.user_id, login.device):
            state.cursor = 0
            state.last_client_id = 0
            state.timeline_cursors = {}
            self._inbox = Inbox(0)
            self._timelines = Timelines()
            self._saved_cursor = 0
            self._book.clear()
            self._receipts.clear()
        state.token = login.token
        state.user_id = login.user_id
        state.name = name
        state.device = login.device
        state.platform = platform
        self._api.token = login.token
        self._remember_self()
        await self._save_state()
        logger.info("logged in user=%d device=%s", login.user_id, login.device)
        return login

    async def logout(self) -> None:
        """Close the connection, revoke the token on the server and forget it.

        Raises NotLoggedIn without a token. A token the server no longer
        accepts is forgotten without an error.
        """
        if self._state.token is None:
            raise NotLoggedIn("not logged in")
        await self.flush()
        await self._stop_session()
        try:
            await self._api.logout()
        except Unauthorized:
            logger.info("the token was already invalid; forgetting it")
        self._state.token = None
        self._api.token = None
        await self._save_state()
        logger.info("logged out user=%d device=%s", self.user_id, self.device)

    async def change_password(self, current: str, new: str) -> None:
        """Change the account's password; this client's token stays valid.

        The server revokes every other token of the account and closes the
        other devices' connections. Raises NotLoggedIn without a token and
        InvalidCredentials when ``current`` is wrong.
        """
        if self._state.token is None:
            raise NotLoggedIn("not logged in")
        await self._api.change_password(current, new)
        logger.info("changed the password of user=%d", self.user_id)

    # Connection.

    # The timeout is a parameter, not the caller's asyncio.timeout, because
    # its error carries the last connection failure.
    async def connect(
        self,
        transport: str = "tcp",
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> None:
        """Connect to a gateway and keep reconnecting until :meth:`close`.

        Returns once the server accepted the first connection. Raises
        NotLoggedIn without a token and SessionEnded if the server rejects the
        token. If no connection succeeds within ``timeout`` seconds, the
        client stops trying and raises ServerUnreachable with the last
        failure.
        """
        if self._closed:
            raise ClientClosed("the client is closed")
        if transport not in TRANSPORTS:
            raise ValueError(f"invalid transport {transport!r}: use 'tcp' or 'ws'")
        state = self._state
        if state.token is None:
            raise NotLoggedIn("not logged in: call login() before connect()")
        session = self._session
        if session is None or session.error is not None:
            session = Session(
                api=self._api,
                state=state,
                save_state=self._save_state,
                inbox=self._inbox,
                timelines=self._timelines,
                book=self._book,
                heartbeat=self._heartbeat,
                transport=transport,
                platform=PLATFORMS.get(state.platform, pb.PLATFORM_UNSPECIFIED),
                fallback_gateways=self._fallback_gateways,
                open_transport=self._open_transport,
                options=self._options,
                on_change=self._changed.set,
                on_receipt=self._receipts.append,
                on_signal=self._add_signal,
            )
            self._session = session
            session.start()
        try:
            await session.wait_ready(timeout)
        except ServerUnreachable:
            await self._stop_session()
            raise

    def reconnect(self) -> None:
        """Drop the connection and reconnect at once, for example after the
        operating system reports a network change."""
        if self._session is not None:
            self._session.reconnect()

    async def close(self) -> None:
        """Persist the cursor, close the connection and release resources."""
        if self._closed:
            return
        try:
            await self.flush()
        finally:
            # Release everything even when saving the cursor failed; the
            # caller still gets that error.
            self._closed = True
            await self._stop_session()
            if self._flush_timer is not None:
                self._flush_timer.cancel()
            await self._api.aclose()
            await self._media.aclose()
            self._changed.set()
            self._signal_added.set()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # Messages.

    async def send(
        self, to: str | int, text: str, *, client_id: int | None = None
    ) -> Sent:
        """Send a text message to a user name or id; return the server's receipt.

        The message gets the next client id unless ``client_id`` is given. It
        is resent with the same id after every reconnect until the server
        acknowledges it, and the server stores it once, so calling again with
        the same ``client_id`` returns an equal receipt. Waits while offline.

        Raises UserNotFound for an unknown name, SendRejected when the server
        rejects the message for good, SessionEnded when the session ends and
        ClientClosed when the client closes first. An empty or blank text,
        or one above the server's size limits, raises SendRejected with
        ``local`` set at once, without using a client id.
        """
        return await self._send_body(to, _text_body(text), TEXT, client_id)

    async def send_media(
        self, to: str | int, media: Media, *, client_id: int | None = None
    ) -> Sent:
        """Send a media message that refers to an uploaded file.

        Retries and errors are those of :meth:`send`.
        """
        return await self._send_body(to, media.to_body(), MEDIA, client_id)

    async def send_file(
        self,
        to: str | int,
        path: str | os.PathLike[str],
        *,
        client_id: int | None = None,
    ) -> Sent:
        """Upload the file at ``path``, then send a media message that refers
        to it. Returns the receipt of the message.

        Raises what :meth:`upload` and :meth:`send` raise.
        """
        media = await self.upload(path)
        return await self.send_media(to, media, client_id=client_id)

    async def upload(self, path: str | os.PathLike[str]) -> Media:
        """Upload the file at ``path`` over HTTP and return its id and URLs.

        The server names the file by its SHA-256, so uploading the same bytes
        again returns the same id and stores nothing new. Raises NotLoggedIn
        without a token, ApiError with status 413 for a file above the
        server's size limit (100 MB by default) and 400 for an image that
        does not decode, and OSError when the file cannot be read.
        """
        return await self._media.upload(Path(path))

    async def media_urls(self, media_id: str) -> Media:
        """Return the description of an uploaded file with fresh signed URLs.

        Raises ApiError with status 404 for an unknown id.
        """
        return await self._media.fresh_urls(media_id)

    async def download(self, media_id: str, dest: str | os.PathLike[str]) -> Media:
        """Download an uploaded file to ``dest``, replacing it, and return its
        description.

        Gets fresh signed URLs first, so the id of a media message is enough.
        Raises ApiError with status 404 for an unknown id, and
        DownloadCorrupted when the bytes do not match the id's SHA-256.
        """
        media = await self._media.fresh_urls(media_id)
        await self._media.download(media, Path(dest))
        return media

    async def _send_body(
        self, to: str | int, body: bytes, content_type: int, client_id: int | None
    ) -> Sent:
        self._require_session()
        recipient_id = await self.resolve_user(to)
        send = pb.Send(to=recipient_id, body=body, content_type=content_type)
        return await self._submit(send, client_id)

    async def _send_group_body(
        self,
        group_id: int,
        body: bytes,
        content_type: int,
        mentions: Sequence[str | int],
        client_id: int | None,
    ) -> Sent:
        if group_id <= 0:
            raise ValueError(f"invalid group id {group_id}: group ids start at 1")
        self._require_session()
        mention_ids = [await self.resolve_user(user) for user in mentions]
        send = pb.Send(
            group=group_id,
            body=body,
            content_type=content_type,
            mentions=list(dict.fromkeys(mention_ids)),
        )
        return await self._submit(send, client_id)

    async def _submit(self, send: pb.Send, client_id: int | None) -> Sent:
        """Queue ``send`` under a new or given client id; return its receipt."""
        session = self._require_session()
        # The message ends the indicator at the receivers, so typing again
        # must be sent again at once.
        self._typing_sent.pop((send.to, send.group), None)
        if client_id is not None:
            if client_id <= 0:
                raise ValueError(f"invalid client_id {client_id}: must be 1 or more")
            receipt = session.receipt(client_id)
            if receipt is not None:
                return receipt
        # New ids must start above the highest the server stored from this
        # device, which Connected reports.
        await session.wait_ready(None)
        session.limits.check(send)
        state = self._state
        if client_id is None:
            state.last_client_id += 1
            client_id = state.last_client_id
        else:
            state.last_client_id = max(state.last_client_id, client_id)
        future = session.submit(
            client_id,
            send.to,
            send.body,
            send.content_type,
            group_id=send.group,
            mentions=tuple(send.mentions),
        )
        await self._save_state()
        return await asyncio.shield(future)

    async def next_message(self) -> Message:
        """Wait for the next inbox message and hand it out, in sequence order.

        Each message is handed out once. Change entries (recalls, edits,
        deletions, reads) are passed over, after they updated the
        conversation list; :meth:`next_event` hands them out too. Cancelling
        the call (for example with ``asyncio.timeout``) loses no message.
        Raises ClientClosed after :meth:`close` and SessionEnded when the
        server ended the session.
        """
        while True:
            item = await self._next_event(receipts=False)
            if isinstance(item, Message):
                return item

    async def next_event(self) -> Event:
        """Wait for the next message, change or read receipt and hand it out.

        Inbox entries come once each, in sequence order, like messages from
        :meth:`next_message`: a :class:`Message`, or a
        :class:`MessageRecalled`, :class:`MessageEdited`,
        :class:`MessageDeleted` or :class:`ConversationRead` that refers to
        one. A :class:`ReadReceipt` of another user comes as soon as it
        arrives; receipts are not stored, so the client keeps those that
        arrive between calls, up to 1000. Raises like
        :meth:`next_message`.
        """
        return await self._next_event(receipts=True)

    async def events(self) -> AsyncIterator[Event]:
        """Yield every event of :meth:`next_event` until :meth:`close`."""
        while True:
            try:
                event = await self.next_event()
            except ClientClosed:
                return
            yield event

    async def _next_event(self, *, receipts: bool) -> Event:
        while True:
            if self._closed:
                raise ClientClosed("the client is closed")
            if receipts and self._receipts:
                return self._receipts.popleft()
            entry = self._inbox.peek()
            if entry is not None:
                item = await self._add_names(entry)
                if self._inbox.peek() is entry:
                    self._inbox.pop()
                    self._advance_cursor(entry.seq)
                    return item
                continue
            found = self._timelines.peek()
            if found is not None:
                group, timeline_item = found
                item = await self._add_names(timeline_item)
                again = self._timelines.peek()
                if again is not None and again[1] is timeline_item:
                    self._advance_timeline(group)
                    return item
                continue
            session = self._require_session()
            if session.error is not None:
                raise session.error
            self._changed.clear()
            await self._changed.wait()

    async def messages(self) -> AsyncIterator[Message]:
        """Yield every inbox message once, in sequence order, until :meth:`close`."""
        while True:
            try:
                message = await self.next_message()
            except ClientClosed:
                return
            yield message

    async def history(
        self, peer: str, *, before: int | None = None, limit: int = 50
    ) -> HistoryPage:
        """Return the conversation with ``peer``, newest first.

        ``before`` is a message id: pass the last id of a page to read the
        page before it. Raises UserNotFound for an unknown peer.
        """
        return await self._api.history(
            peer, self._state.user_id, before=before, limit=limit
        )

    # Conversations and reads.

    async def conversations(
        self, *, limit: int = 50, before: int | None = None
    ) -> ConversationPage:
        """Read a page of the conversation list over HTTP, most recent first.

        ``before`` is the ``last.id`` of the final conversation of the
        previous page. The page also refreshes :meth:`cached_conversations`.
        Works without :meth:`connect`.
        """
        page = await self._api.conversations(
            self._state.user_id, limit=limit, before=before
        )
        self._book.apply_page(page)
        for conversation in page.conversations:
            if not conversation.group_id:
                self._remember(User(conversation.peer_id, conversation.name))
        return page

    def cached_conversations(self) -> list[Conversation]:
        """Return the conversations cached by this client, most recent first.

        The server sends the first page after each connect, and every inbox
        entry keeps the unread counts exact, on every device of the user. A
        user with more conversations than the first page (50 by default,
        ``ClientOptions.conversations_on_connect``) finds older ones with
        :meth:`conversations`.
        """
        return [self._with_name(c) for c in self._book.conversations()]

    def conversation(
        self, peer: int | None = None, *, group: int | None = None
    ) -> Conversation | None:
        """Return the cached conversation with user id ``peer`` or ``group``."""
        found = self._book.get((peer or 0, group or 0))
        return None if found is None else self._with_name(found)

    @property
    def total_unread(self) -> int:
        """Unread messages over :meth:`cached_conversations`."""
        return self._book.total_unread

    async def mark_read(
        self,
        peer: str | int | None = None,
        *,
        group: int | None = None,
        up_to: int | None = None,
    ) -> Changed:
        """Read the conversation with ``peer`` (a name or id) or ``group``.

        ``up_to`` is a message id; None reads up to the latest message. The
        user's other devices clear their unread count, and the other side
        gets a read receipt. Goes over the socket after :meth:`connect`
        (waiting while offline), otherwise over HTTP. Raises ChangeRejected
        for an unknown group or one the user never was in, and UserNotFound
        for an unknown peer name.
        """
        if (peer is None) == (group is None):
            raise ValueError("give either peer or group")
        peer_id = 0 if peer is None else await self.resolve_user(peer)
        if self._session is not None:
            request = pb.ChangeRequest(
                kind=pb.CHANGE_READ,
                peer=peer_id,
                group=group or 0,
                message_id=up_to or 0,
            )
            return await self._change(request)
        peer_name = None if peer is None else await self._name_of(peer_id)
        return await self._http_change(
            self._api.mark_read(peer=peer_name, group_id=group or 0, message_id=up_to)
        )

    async def read_counts(
        self, group: int, message_ids: Sequence[int]
    ) -> list[ReadCount]:
        """Return how many members of ``group`` read each message, over HTTP.

        Ids that are not messages of the group are left out. Raises
        ChangeRejected for an unknown group or one the user is not in.
        """
        return await self._http_change(self._api.read_counts(group, list(message_ids)))

    # Changes to sent messages.

    async def recall(self, message_id: int) -> Changed:
        """Recall a message this user sent, for everyone who has it.

        Every device of both sides replaces it, those offline on their next
        sync. Raises ChangeRejected: NOT_SENDER, WINDOW_PASSED (2 minutes by
        default), MESSAGE_NOT_FOUND. Goes over the socket after
        :meth:`connect`, otherwise over HTTP.
        """
        request = pb.ChangeRequest(kind=pb.CHANGE_RECALL, message_id=message_id)
        if self._session is not None:
            return await self._change(request)
        return await self._http_change(self._api.recall(message_id))

    async def edit(self, message_id: int, text: str) -> Changed:
        """Replace the text of a message this user sent, for everyone.

        Raises ChangeRejected: NOT_SENDER, WINDOW_PASSED, MESSAGE_RECALLED,
        INVALID_MESSAGE, MESSAGE_NOT_FOUND. Goes over the socket after
        :meth:`connect`, otherwise over HTTP.
        """
        body = text.encode()
        request = pb.ChangeRequest(
            kind=pb.CHANGE_EDIT, message_id=message_id, body=body
        )
        if self._session is not None:
            return await self._change(request)
        return await self._http_change(self._api.edit(message_id, text))

    async def delete(self, message_id: int) -> Changed:
        """Delete a message for this user only, on all of this user's devices.

        Raises ChangeRejected MESSAGE_NOT_FOUND. Goes over the socket after
        :meth:`connect`, otherwise over HTTP.
        """
        request = pb.ChangeRequest(kind=pb.CHANGE_DELETE, message_id=message_id)
        if self._session is not None:
            return await self._change(request)
        return await self._http_change(self._api.delete(message_id))

    async def _change(self, request: pb.ChangeRequest) -> Changed:
        session = self._require_session()
        ack = await asyncio.shield(session.submit_change(request))
        return Changed(
            # A large group's change is a timeline entry: seq 0, but an id.
            changed=ack.seq > 0 or ack.id > 0,
            seq=ack.seq,
            id=ack.id,
            changed_at=ack.changed_at,
            unread=ack.unread,
            read_id=ack.read_id,
        )

    async def _http_change(self, call: Awaitable[_T]) -> _T:
        """Await an HTTP call; turn the server's rejection into ChangeRejected."""
        try:
            return await call
        except UserNotFound:
            raise
        except ApiError as exc:
            code = ErrorCode.__members__.get(exc.code.upper())
            if code is None or exc.status in (401, 422):
                raise
            raise ChangeRejected(code, exc.message) from exc

    async def _name_of(self, user_id: int) -> str:
        name = self._names.get(user_id)
        if name is None:
            users = await self._api.get_users([user_id])
            if not users:
                raise UserNotFound(404, "user_not_found", f"no user with id {user_id}")
            self._remember(users[0])
            name = users[0].name
        return name

    def _with_name(self, conversation: Conversation) -> Conversation:
        if conversation.name or conversation.group_id:
            return conversation
        name = self._names.get(conversation.peer_id, "")
        return dataclasses.replace(conversation, name=name)

    def cached_name(self, user_id: int) -> str | None:
        """Return the name of a user this client has seen, without a request."""
        return self._names.get(user_id)

    # Typing and presence.

    async def set_typing(
        self,
        to: str | int | None = None,
        *,
        group: int | None = None,
        active: bool = True,
    ) -> None:
        """Tell a peer (``to``) or a group that this user is typing, or stopped.

        Call it on every keystroke: the SDK sends a frame at most every
        TYPING_REFRESH seconds while typing, and one when typing stops. Typing
        is transient, so nothing is sent while offline. The server reports
        a target that is no peer (FORBIDDEN) or a group this user is not in
        with an error frame that the SDK logs. Raises NotConnected before
        :meth:`connect`.
        """
        if (to is None) == (group is None):
            raise ValueError("give either to (a user) or group")
        session = self._require_session()
        if group is not None:
            key = (0, group)
        else:
            assert to is not None
            key = (await self.resolve_user(to), 0)
        now = asyncio.get_running_loop().time()
        last = self._typing_sent.get(key)
        if active and last is not None and now - last < TYPING_REFRESH:
            return
        if not active and last is None:
            return
        if await session.send_typing(key[0], key[1], active) and active:
            self._typing_sent[key] = now
        elif not active:
            self._typing_sent.pop(key, None)

    async def watch_presence(self, users: Sequence[str | int]) -> None:
        """Watch whether these users are online, replacing the earlier list.

        The server replies with the presence of those who are this user's
        conversation peers (see :class:`PresenceChanged`), and then reports
        each change, on every connection until the list changes. An empty
        list stops watching. The server accepts up to 500 users by default.
        """
        ids = [await self.resolve_user(user) for user in users]
        await self._require_session().watch_presence(list(dict.fromkeys(ids)))

    def presence(self, user_id: int) -> PresenceChanged | None:
        """Return the latest presence reported for a watched user, if any."""
        return self._presence.get(user_id)

    async def next_signal(self) -> Signal:
        """Wait for the next typing or presence signal and return it.

        Only the latest SIGNALS_KEPT signals wait here; older ones are dropped.
        Raises ClientClosed after :meth:`close`.
        """
        while not self._signals:
            if self._closed:
                raise ClientClosed("the client is closed")
            self._signal_added.clear()
            await self._signal_added.wait()
        event = self._signals.popleft()
        names = {}
        with contextlib.suppress(ServerUnreachable, ApiError):
            names = await self.user_names([event.user_id])
        return dataclasses.replace(event, user_name=names.get(event.user_id))

    async def signals(self) -> AsyncIterator[Signal]:
        """Yield typing and presence signals until :meth:`close`."""
        while True:
            try:
                event = await self.next_signal()
            except ClientClosed:
                return
            yield event

    def _add_signal(self, event: Signal) -> None:
        if isinstance(event, PresenceChanged):
            self._presence[event.user_id] = event
        self._signals.append(event)
        self._signal_added.set()

    # Groups.

    async def create_group(self, name: str, members: Sequence[str] = ()) -> Group:
        """Create a group owned by this user, with ``members`` (account names)
        as plain members, and return it with its members.

        Every member's inbox gets a notice of the creation. Raises
        UserNotFound for an unknown name and InvalidRequest for a name that
        is empty, longer than 100 characters or contains control characters.
        """
        return await self._groups.create(name, members)

    async def groups(self) -> list[Group]:
        """Return the groups this user is a member of, without their members."""
        groups = await self._groups.list_mine()
        for group in groups:
            self._group_names[group.id] = group.name
        return groups

    async def group(self, group_id: int) -> Group:
        """Return a group with its members; raise GroupNotFound for an
        unknown id and Forbidden unless this user is a member."""
        return await self._groups.get(group_id)

    async def group_members(self, group_id: int) -> list[GroupMember]:
        """Return a group's members ordered by user id; errors as :meth:`group`."""
        return list((await self._groups.get(group_id)).members)

    async def add_group_members(
        self, group_id: int, names: Sequence[str], *, role: str = "member"
    ) -> Group:
        """Add users by name as ``member`` or ``admin``; return the group.

        Admins may add members and only the owner may add admins (Forbidden
        otherwise). Raises ApiError 409 ``already_member`` when one of them
        is a member, and ``group_full`` when the group would be too large.
        """
        return await self._groups.add_members(group_id, names, role)

    async def remove_group_member(self, group_id: int, name: str) -> None:
        """Remove a member; it needs a role above the member's, and at least
        admin. Removing this user itself leaves the group."""
        await self._groups.remove_member(group_id, name)

    async def leave_group(self, group_id: int) -> None:
        """Leave a group; the owner cannot (Forbidden)."""
        if not self._state.name:
            raise NotLoggedIn("not logged in: call login() before leave_group()")
        await self._groups.remove_member(group_id, self._state.name)

    async def rename_group(self, group_id: int, name: str) -> Group:
        """Rename a group (admins and the owner); return it without members."""
        group = await self._groups.rename(group_id, name)
        self._group_names[group.id] = group.name
        return group

    async def set_group_role(self, group_id: int, name: str, role: str) -> Group:
        """Make a member an ``admin`` or a plain ``member``; the owner only."""
        return await self._groups.set_role(group_id, name, role)

    async def send_group(
        self,
        group_id: int,
        text: str,
        *,
        mentions: Sequence[str | int] = (),
        client_id: int | None = None,
    ) -> Sent:
        """Send a text message to a group; return the server's receipt.

        ``mentions`` are users (names or ids) the message mentions, each a
        member. Retries and errors are those of :meth:`send`, and the server
        rejects the message (SendRejected) with NOT_A_MEMBER when this user
        is not a member and GROUP_NOT_FOUND for an unknown group.
        """
        body = _text_body(text)
        return await self._send_group_body(group_id, body, TEXT, mentions, client_id)

    async def send_group_media(
        self, group_id: int, media: Media, *, client_id: int | None = None
    ) -> Sent:
        """Send a media message to a group; errors as :meth:`send_group`."""
        return await self._send_group_body(
            group_id, media.to_body(), MEDIA, (), client_id
        )

    async def group_history(
        self, group_id: int, *, before: int | None = None, limit: int = 50
    ) -> HistoryPage:
        """Return a group's messages and notices, newest first; members only.

        ``before`` is a message id, as in :meth:`history`.
        """
        page = await self._groups.history(
            group_id, self._state.user_id, before=before, limit=limit
        )
        if group_id not in self._group_names:
            await self._remember_groups(group_id)
        name = self._group_names[group_id]
        messages = [dataclasses.replace(m, group_name=name) for m in page.messages]
        return dataclasses.replace(page, messages=messages)

    # Search.

    async def search(
        self,
        text: str,
        *,
        cursor: str | None = None,
        limit: int = 20,
        peer: str | None = None,
        group: int | None = None,
    ) -> SearchPage:
        """Search this user's text messages for every word of ``text``.

        Each word matches the words that start with it, ignoring case and
        accents. ``peer`` (a user name) or ``group`` keeps one conversation.
        Pass a page's ``next_cursor`` as ``cursor`` for the next page. Raises
        InvalidRequest for text without a letter or digit, more than 10 words
        or 200 characters, or a bad cursor, and UserNotFound for an unknown
        peer.
        """
        return await self._api.search(
            text,
            self._state.user_id,
            cursor=cursor,
            limit=limit,
            peer=peer,
            group=group,
        )

    # Users.

    async def user_names(self, ids: Sequence[int]) -> dict[int, str]:
        """Return the names of the users with these ids, looking up unknown
        ones; ids of no user are left out."""
        missing = sorted(set(ids) - self._names.keys() - {0})
        if missing:
            for user in await self._api.get_users(missing):
                self._remember(user)
        return {i: self._names[i] for i in ids if i in self._names}

    async def get_user(self, name: str) -> User:
        """Return the user named ``name``; raise UserNotFound if there is none."""
        user = await self._api.get_user(name)
        self._remember(user)
        return user

    async def resolve_user(self, user: str | int) -> int:
        """Return the id of a user given by name or id.

        Concurrent calls for one name share one lookup and resume in call
        order, so sends to one recipient get client ids in call order.
        """
        if isinstance(user, int):
            return user
        user_id = self._ids.get(user)
        if user_id is not None:
            return user_id
        lookup = self._lookups.get(user)
        if lookup is None:
            lookup = asyncio.ensure_future(self.get_user(user))
            self._lookups[user] = lookup
            lookup.add_done_callback(self._lookup_done(user))
        return (await asyncio.shield(lookup)).id

    async def flush(self) -> None:
        """Persist the cursor and send it to the server now."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        cursor = self._state.cursor
        if cursor != self._saved_cursor or not self._timelines_saved:
            self._timelines_saved = True
            await self._save_state()
            self._saved_cursor = cursor
        if self._session is not None:
            await self._session.send_cursor(cursor)

    # Helpers.

    def _require_session(self) -> Session:
        if self._closed:
            raise ClientClosed("the client is closed")
        if self._session is None and self._state.token is None:
            raise NotLoggedIn("not logged in: call login() first")
        if self._session is None:
            raise NotConnected("not connected: call connect() first")
        return self._session

    async def _stop_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.stop()

    async def _save_state(self) -> None:
        # Saves run in a thread, one at a time, so an older snapshot never
        # overwrites a newer one.
        async with self._save_lock:
            snapshot = self._state.copy()
            await asyncio.to_thread(self._store.save, snapshot)

    def _advance_timeline(self, group: int) -> None:
        seq = self._timelines.pop(group)
        self._state.timeline_cursors[str(group)] = seq
        self._timelines_saved = False
        self._schedule_flush()

    def _advance_cursor(self, seq: int) -> None:
        self._state.cursor = seq
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_timer is None:
            loop = asyncio.get_running_loop()
            self._flush_timer = loop.call_later(
                self._options.cursor_flush_interval, self._start_flush
            )

    def _start_flush(self) -> None:
        self._flush_timer = None
        task = asyncio.create_task(self._flush_logged())
        self._flush_tasks.add(task)
        task.add_done_callback(self._flush_tasks.discard)

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except OSError as exc:
            logger.error("saving the client state failed: %s", exc)

    def _lookup_done(self, name: str) -> Callable[[asyncio.Future[User]], None]:
        def forget(lookup: asyncio.Future[User]) -> None:
            self._lookups.pop(name, None)
            # Mark a failure as retrieved: every caller may have been cancelled.
            if not lookup.cancelled():
                lookup.exception()

        return forget

    def _remember_self(self) -> None:
        if self._state.user_id and self._state.name:
            self._remember(User(self._state.user_id, self._state.name))

    def _remember(self, user: User) -> None:
        self._names[user.id] = user.name
        self._ids[user.name] = user.id

    async def _add_names(self, item: InboxItem) -> InboxItem:
        """Add the names of a message's users and group, looking up the ones
        not known yet, and the users of a group notice. Other items are
        returned as they are."""
        if not isinstance(item, Message):
            return item
        message = item
        users = {message.sender_id, message.recipient_id}
        notice = message.notice
        if notice is not None and len(notice.user_ids) <= NOTICE_NAMES_PREFETCHED:
            users.update(notice.user_ids)
            if notice.name is not None:
                self._group_names[notice.group_id] = notice.name
        missing = users - self._names.keys() - {0}
        group_missing = (
            message.group_id != 0 and message.group_id not in self._group_names
        )
        loop = asyncio.get_running_loop()
        if (missing or group_missing) and loop.time() >= self._name_lookup_after:
            try:
                if missing:
                    for user in await self._api.get_users(sorted(missing)):
                        self._remember(user)
                if group_missing:
                    await self._remember_groups(message.group_id)
            except (ServerUnreachable, ApiError) as exc:
                logger.warning("looking up names failed: %s", exc)
                self._name_lookup_after = loop.time() + NAME_LOOKUP_RETRY
        return dataclasses.replace(
            message,
            sender_name=self._names.get(message.sender_id),
            recipient_name=self._names.get(message.recipient_id),
            group_name=self._group_names.get(message.group_id),
        )

    async def _remember_groups(self, wanted: int) -> None:
        """Cache the names of this user's groups; ``wanted`` is None if absent."""
        for group in await self._groups.list_mine():
            self._group_names[group.id] = group.name
        self._group_names.setdefault(wanted, None)


def _text_body(text: str) -> bytes:
    """Return ``text`` as UTF-8; raise SendRejected for an empty or blank one."""
    if not text or text.isspace():
        raise SendRejected(
            ErrorCode.INVALID_MESSAGE,
            "the text is empty or only whitespace; write at least one"
            " character that is not whitespace",
            0,
            local=True,
        )
    return text.encode()


def check_base_url(url: str) -> str:
    """Return ``url``; raise ValueError unless it is an http or https URL with
    a host and a valid port."""
    expected = "expected http://HOST[:PORT], for example " + DEFAULT_BASE_URL
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"invalid server URL {url[:100]!r}: {expected}")
    try:
        parts.port  # noqa: B018  (urllib validates the port on access)
    except ValueError:
        raise ValueError(
            f"invalid server URL {url[:100]!r}: the port must be a number from"
            f" 0 to 65535; {expected}"
        ) from None
    if parts.query or parts.fragment:
        raise ValueError(
            f"invalid server URL {url[:100]!r}: remove the '?' or '#' part; {expected}"
        )
    return url


def default_gateways(base_url: str) -> list[Gateway]:
    """Return the gateways a default server at ``base_url`` listens on."""
    parts = urlsplit(base_url)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    scheme = "wss" if parts.scheme == "https" else "ws"
    return [
        Gateway("tcp", f"{host}:{DEFAULT_TCP_PORT}"),
        Gateway("ws", f"{scheme}://{parts.netloc}/v1/ws"),
    ]


def _timelines_of(state: ClientState) -> Timelines[InboxItem]:
    cursors = {int(group): seq for group, seq in state.timeline_cursors.items()}
    return Timelines(cursors)
