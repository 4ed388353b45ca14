"""What the metadata service says about the droplet, checked before anything is written.

Pure: text in, a validated value or :class:`MetadataInvalid` out.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from floating_ip_annotator.errors import MetadataInvalid

_SHOWN_CHARS = 60
_DROPLET_ID = re.compile(r"[1-9][0-9]{0,18}")


@dataclass(frozen=True)
class DropletIdentity:
    droplet_id: int
    anchor_ipv4: str


def shown(text: str) -> str:
    """The answer quoted for a log line, cut short (a misrouted request may return a page)."""
    if len(text) > _SHOWN_CHARS:
        return repr(text[:_SHOWN_CHARS]) + f"... ({len(text)} characters)"
    return repr(text)


def parse_anchor_ipv4(text: str, source: str) -> str:
    """The anchor IPv4 in dotted form, from the body of ``.../anchor_ipv4/address``."""
    value = text.strip()
    if not value:
        raise MetadataInvalid(f"metadata answered an empty body for anchor_ipv4 ({source})")
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise MetadataInvalid(
            f"metadata answered {shown(text)} for anchor_ipv4 ({source}): not an IPv4 address"
        ) from None
    if address.version != 4:
        raise MetadataInvalid(
            f"metadata answered {shown(text)} for anchor_ipv4 ({source}): "
            "an IPv6 address, the anchor must be IPv4"
        )
    if address.is_unspecified or address.is_loopback or address.is_multicast or address.is_reserved:
        raise MetadataInvalid(
            f"metadata answered {shown(text)} for anchor_ipv4 ({source}): "
            "not a unicast address a droplet can own"
        )
    if address.is_link_local:
        raise MetadataInvalid(
            f"metadata answered {shown(text)} for anchor_ipv4 ({source}): "
            "a link-local address (169.254.x.x), not the droplet's anchor"
        )
    if address.is_global:
        raise MetadataInvalid(
            f"metadata answered {shown(text)} for anchor_ipv4 ({source}): "
            "a public address; the anchor is private (10.x), is this the droplet's public IPv4?"
        )
    return str(address)


def parse_droplet_id(text: str, source: str) -> int:
    """The droplet id, a positive integer, from the body of ``.../id``."""
    value = text.strip()
    if not _DROPLET_ID.fullmatch(value):
        raise MetadataInvalid(
            f"metadata answered {shown(text)} for the droplet id ({source}): not a positive integer"
        )
    return int(value)
