"""TLS contexts for the server's listeners and for the SDK.

The server uses one certificate chain and key, in PEM files, for the TCP
gateway, the HTTP API and the WebSocket gateway. Clients verify the server's
certificate against the system's trust store, which OpenSSL reads from
``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` when they are set, or against a CA file
they are given.
"""

from __future__ import annotations

import ssl
from pathlib import Path

__all__ = ["client_context", "server_context"]


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """Return a server context for the PEM certificate chain and key.

    Raises ValueError naming the files when they cannot be read or do not
    belong together.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    for name, path in (("certificate", cert_file), ("key", key_file)):
        if not Path(path).is_file():
            raise ValueError(f"TLS {name} file {path!r} not found")
    try:
        context.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(
            f"cannot load the TLS certificate {cert_file!r} with key {key_file!r}:"
            f" {exc}; both must be PEM files and the key must match the certificate"
        ) from exc
    return context


def client_context(ca_file: str | None = None) -> ssl.SSLContext:
    """Return a client context that verifies servers against the system's
    trust store, or against ``ca_file`` (PEM) when given."""
    return ssl.create_default_context(cafile=ca_file)
