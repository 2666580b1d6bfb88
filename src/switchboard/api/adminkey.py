"""The admin key, which reserves the account names of the ``admins`` setting.

Admin rights go by account name. Without a reservation, anyone could
register a listed name before the operator and become an admin, so
``POST /v1/accounts`` creates a listed name only when the request's
``X-Admin-Key`` header contains the admin key in hex. ``switchboard serve``
keeps the key in ``data_dir/admin.key`` (mode 0600), so only someone who can
read the server's files can create an admin; ``SWITCHBOARD_ADMIN_KEY`` sets
it instead, for a cluster.

NOTE: an account that already exists when its name is added to ``admins``
becomes an admin whoever registered it; check its owner before listing it.
"""

from __future__ import annotations

import hmac
import logging
from pathlib import Path

from switchboard.api.signing import load_or_create_key
from switchboard.config import Settings
from switchboard.logs import RateLimitedLog

__all__ = ["ADMIN_KEY_FILE", "ADMIN_KEY_HEADER", "check_admin_key", "load_admin_key"]

logger = logging.getLogger("switchboard.api")
rejections = RateLimitedLog(logger)

ADMIN_KEY_FILE = "admin.key"
"""File in the data directory that contains the admin key, 32 raw bytes."""

ADMIN_KEY_HEADER = "X-Admin-Key"


def load_admin_key(settings: Settings, data_dir: Path | None) -> bytes | None:
    """Return the key of ``settings.admin_key``, else the one in ``data_dir``.

    A key file is created with a random key when missing. Returns None when
    neither is given.
    """
    if settings.admin_key:
        return bytes.fromhex(settings.admin_key)
    if data_dir is None:
        return None
    return load_or_create_key(
        data_dir / ADMIN_KEY_FILE,
        "admin key",
        "the old key no longer creates admin accounts",
    )


def check_admin_key(key: bytes | None, name: str, header: str | None) -> None:
    """Raise ApiError 403 unless ``header`` is ``key`` in hex."""
    # Imported here because app.py imports this module.
    from switchboard.api.app import ApiError

    given = (header or "").strip().lower()
    if key is not None and given.isascii() and hmac.compare_digest(key.hex(), given):
        return
    rejections.warning(
        "admin-name", "account creation rejected: %r is a reserved admin name", name
    )
    raise ApiError(
        403,
        "name_reserved",
        f"the name {name!r} is reserved for an admin listed in SWITCHBOARD_ADMINS;"
        f" the operator creates it with `switchboard account create {name}"
        f" --admin-key-file DATA_DIR/{ADMIN_KEY_FILE}`",
    )
