"""Accounts, logins and tokens.

A token is 32 random bytes, URL-safe base64 encoded, handed to the client
once. The store keeps only its SHA-256 digest, so a copy of the database
does not let anyone log in. Passwords are hashed with argon2id.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from switchboard.config import Settings
from switchboard.errors import ErrorCode, RequestError
from switchboard.ids import DeviceId, UserId
from switchboard.logic.login_limits import LoginGuard
from switchboard.store.base import NameTaken, Session, Store, User

__all__ = ["PLATFORMS", "AuthService", "LoginResult", "token_digest"]

logger = logging.getLogger("switchboard.logic")

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")
DEVICE_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
TOKEN_BYTES = 16
"""Random bytes in a login token."""

PLATFORMS: dict[str, int] = {
    "unspecified": 0,
    "android": 1,
    "ios": 2,
    "web": 3,
    "desktop": 4,
    "cli": 5,
}
"""Platform names of the HTTP API and their numbers in the wire schema."""


def token_digest(token: str) -> bytes:
    """Return the SHA-256 digest under which a token is stored."""
    return hashlib.sha256(token.encode()).digest()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class LoginResult:
    token: str
    session: Session


class AuthService:
    """Creates accounts, logs devices in and out, and checks tokens."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._token_ttl_ms = settings.token_ttl * 1000
        self._hasher = PasswordHasher()
        self._guard = LoginGuard(settings)

    async def create_account(self, name: str, password: str) -> User:
        """Insert an account. Raises RequestError for an invalid or taken name."""
        _check_name(name)
        _check_password(password)
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        try:
            user = await self._store.create_user(name, password_hash, now_ms())
        except NameTaken as exc:
            raise RequestError(
                ErrorCode.NAME_TAKEN, f"the name {name!r} is taken; choose another one"
            ) from exc
        logger.info("account created user=%d name=%s", user.id, name)
        return user

    async def login(
        self, name: str, password: str, device: str, platform: str, peer: str = ""
    ) -> LoginResult:
        """Check the password and issue a token bound to ``device``.

        Too many failed logins of ``name`` from the address ``peer``, or from
        ``peer`` at all, make further attempts fail with RATE_LIMITED before
        any password check. Too many of ``name`` from all addresses slow its
        logins down (see :mod:`switchboard.logic.login_limits`).
        """
        _check_device(device)
        platform_number = _platform_number(platform)
        _check_encodable(name, "name")
        _check_encodable(password, "password")
        await self._guard.admit(name, peer)
        user = await self._store.get_user_by_name(name)
        if user is None or not await self._verify(user, password):
            self._guard.failed(name, peer)
            logger.info("login failed name=%s device=%s peer=%s", name, device, peer)
            raise RequestError(ErrorCode.UNAUTHORIZED, "invalid name or password")
        # 128 random bits (22 characters) cannot be guessed, and keep the
        # Connect frame that carries the token on each reconnect short.
        token = secrets.token_urlsafe(TOKEN_BYTES)
        created = now_ms()
        session = Session(
            token_hash=token_digest(token),
            user_id=user.id,
            device=DeviceId(device),
            platform=platform_number,
            created_at=created,
            expires_at=created + self._token_ttl_ms,
        )
        await self._store.create_session(session)
        logger.info("login user=%d device=%s platform=%s", user.id, device, platform)
        return LoginResult(token, session)

    async def _verify(self, user: User, password: str) -> bool:
        try:
            return await asyncio.to_thread(
                self._hasher.verify, user.password_hash, password
            )
        except (VerificationError, InvalidHashError):
            return False

    async def authenticate(self, token: str) -> Session:
        """Return the live session of ``token``; raise RequestError otherwise."""
        session = await self._store.get_session(token_digest(token))
        if session is None:
            raise RequestError(
                ErrorCode.UNAUTHORIZED,
                "invalid or revoked token; log in again",
            )
        if session.expires_at <= now_ms():
            raise RequestError(ErrorCode.UNAUTHORIZED, "token expired; log in again")
        return session

    async def logout(self, token: str) -> Session:
        """Revoke ``token``; return its session. Raises RequestError if unknown."""
        session = await self._store.delete_session(token_digest(token))
        if session is None:
            raise RequestError(
                ErrorCode.UNAUTHORIZED, "invalid or revoked token; log in again"
            )
        logger.info("logout user=%d device=%s", session.user_id, session.device)
        return session

    async def change_password(
        self, session: Session, current: str, new: str, peer: str = ""
    ) -> list[Session]:
        """Replace the password of ``session``'s user and revoke its other tokens.

        ``current`` must be the password in use, so a stolen token alone
        cannot take the account over. A wrong one counts as a failed login
        from ``peer`` and raises RequestError UNAUTHORIZED. Returns the
        revoked sessions; ``session`` itself stays valid.
        """
        _check_encodable(current, "current password")
        _check_password(new)
        user = await self._store.get_user(session.user_id)
        if user is None:
            raise RequestError(ErrorCode.UNAUTHORIZED, "the account no longer exists")
        await self._guard.admit(user.name, peer)
        if not await self._verify(user, current):
            self._guard.failed(user.name, peer)
            logger.info("password change failed user=%d peer=%s", user.id, peer)
            raise RequestError(ErrorCode.UNAUTHORIZED, "invalid current password")
        password_hash = await asyncio.to_thread(self._hasher.hash, new)
        revoked = await self._store.change_password(
            user.id, password_hash, session.token_hash
        )
        logger.info(
            "password changed user=%d device=%s revoked_sessions=%d",
            user.id,
            session.device,
            len(revoked),
        )
        return revoked

    async def user_name(self, user_id: UserId) -> str | None:
        user = await self._store.get_user(user_id)
        return None if user is None else user.name


def _check_name(name: str) -> None:
    if not NAME_PATTERN.fullmatch(name):
        raise RequestError(
            ErrorCode.INVALID_ARGUMENT,
            f"invalid name {name[:40]!r}: use 1 to 32 lowercase letters, digits,"
            " '_', '.' or '-', starting with a letter or digit",
        )


def _check_password(password: str) -> None:
    _check_encodable(password, "password")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise RequestError(
            ErrorCode.INVALID_ARGUMENT,
            f"invalid password: use {MIN_PASSWORD} to {MAX_PASSWORD} characters",
        )


def _check_encodable(text: str, what: str) -> None:
    # JSON allows lone surrogates (like "\ud800"), which UTF-8 cannot encode.
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise RequestError(
            ErrorCode.INVALID_ARGUMENT,
            f"invalid {what}: it contains a character that is not valid Unicode"
            f" at position {exc.start}",
        ) from exc


def _check_device(device: str) -> None:
    if not DEVICE_PATTERN.fullmatch(device):
        raise RequestError(
            ErrorCode.INVALID_ARGUMENT,
            f"invalid device id {device[:80]!r}: use 1 to 64 letters, digits,"
            " '_', '.', ':' or '-'",
        )


def _platform_number(platform: str) -> int:
    number = PLATFORMS.get(platform)
    if number is None:
        raise RequestError(
            ErrorCode.INVALID_ARGUMENT,
            f"invalid platform {platform[:40]!r}: use one of {', '.join(PLATFORMS)}",
        )
    return number
