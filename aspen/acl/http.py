"""Who may use the HTTP control plane: the shared password (`Authorization: Bearer
<requirepass>`, as before ACL) or an ACL user allowed every `@admin` command
(`Authorization: Basic base64(user:password)`)."""

from __future__ import annotations

import base64
import binascii
import hmac

from aspen.acl.rules import CATALOGUE, User
from aspen.acl.state import AclState


def is_admin(user: User) -> bool:
    """Some selector of `user` allows every command of the @admin category."""
    mask = CATALOGUE.set_mask["admin"]
    return any(s.allcommands or s.bits & mask == mask for s in user.selectors)


def _default_password_applies(acl: AclState) -> bool:
    return not acl.default_touched


def auth_required(acl: AclState, requirepass: bytes | None) -> bool:
    """Anything but an open default user (no requirepass, nopass) asks for credentials."""
    if _default_password_applies(acl):
        return requirepass is not None
    default = acl.users[b"default"]
    return not (default.nopass and default.enabled)


def authorized(acl: AclState, requirepass: bytes | None, header: str) -> bool:
    """Does the Authorization header `header` admit its sender?"""
    if header.startswith("Bearer ") and requirepass is not None:
        return hmac.compare_digest(header[7:].encode(), requirepass)
    if not header.startswith("Basic "):
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    name, sep, password = decoded.partition(b":")
    if not sep:
        return False
    if name == b"default" and _default_password_applies(acl):
        return requirepass is None or hmac.compare_digest(password, requirepass)
    user = acl.users.get(name)
    return user is not None and user.check_password(password) and is_admin(user)
