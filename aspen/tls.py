"""TLS contexts from the [tls] settings: one server context for RESP, HTTPS and wss, and a
client context for reaching peers (wss, and the control plane's proxying to a peer).

Built once at start-up, so a missing or mismatched file stops the node with a clear error
instead of failing the first client's handshake.
"""

from __future__ import annotations

import ssl

from aspen.node_config import ConfigError, TlsSettings

_VERIFY = {"yes": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "no": ssl.CERT_NONE}


def server_context(tls: TlsSettings, *, verify: str | None = None) -> ssl.SSLContext:
    """A server-side context; `verify` overrides tls.auth_clients (peers always verify)."""
    assert tls.cert_file is not None and tls.key_file is not None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"tls.cert_file/tls.key_file: cannot load: {exc}") from None
    mode = _VERIFY[verify or tls.auth_clients]
    if mode != ssl.CERT_NONE:
        _load_ca(ctx, tls)
    ctx.verify_mode = mode
    return ctx


def client_context(tls: TlsSettings) -> ssl.SSLContext:
    """Verifies the server against tls.ca_cert_file and presents this node's certificate."""
    assert tls.cert_file is not None and tls.key_file is not None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # Members are named by address in [peers]; the certificate chain is what is checked.
    ctx.check_hostname = False
    _load_ca(ctx, tls)
    try:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"tls.cert_file/tls.key_file: cannot load: {exc}") from None
    return ctx


def _load_ca(ctx: ssl.SSLContext, tls: TlsSettings) -> None:
    if tls.ca_cert_file is None:
        raise ConfigError("tls.ca_cert_file: missing (needed to verify certificates)")
    try:
        ctx.load_verify_locations(cafile=tls.ca_cert_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"tls.ca_cert_file: cannot load: {exc}") from None


def https_client_context(tls: TlsSettings) -> ssl.SSLContext | None:
    """How to reach another member's control plane: None for plain HTTP (tls.http off);
    else verified against tls.ca_cert_file (any name: members are addressed by IP), or the
    system's trust store when no CA is configured."""
    if not tls.http:
        return None
    if tls.ca_cert_file is None:
        return ssl.create_default_context()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    _load_ca(ctx, tls)
    return ctx
