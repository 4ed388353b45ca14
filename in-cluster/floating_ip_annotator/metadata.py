"""Reading the droplet's anchor IPv4 and id from the DigitalOcean metadata service."""

from __future__ import annotations

import urllib.parse
import urllib.request

from floating_ip_annotator import transport
from floating_ip_annotator.errors import (
    AnnotatorConfigError,
    MetadataInvalid,
    MetadataUnreachable,
    NoAnchor,
    Transient,
)
from floating_ip_annotator.identity import DropletIdentity, parse_anchor_ipv4, parse_droplet_id
from floating_ip_annotator.retry import GaveUp, RetryPolicy, with_retries
from floating_ip_common.deadline import Deadline

DEFAULT_URL = "http://169.254.169.254"
ANCHOR_PATH = "metadata/v1/interfaces/public/0/anchor_ipv4/address"
ID_PATH = "metadata/v1/id"
# An IPv4 or a droplet id is a few bytes; anything longer is not an answer to keep.
MAX_ANSWER_BYTES = 4096


def check_url(url: str) -> str:
    """The service's root URL, checked; paths under ``/metadata/v1/`` are appended to it.

    Refused here rather than discovered as "unreachable" after every retry: a URL that
    cannot be requested, or one whose query or fragment would swallow the appended path.
    """
    if not url.isprintable() or any(char.isspace() for char in url):
        raise AnnotatorConfigError(
            f"metadata URL {url!r} contains whitespace or control characters"
        )
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number 0-65535
    except ValueError as error:
        raise AnnotatorConfigError(f"metadata URL {url!r} is not a URL: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AnnotatorConfigError(f"metadata URL {url!r} is not an http(s) URL")
    if parts.username is not None or parts.password is not None:
        # Not quoted back: the part before "@" may be a password.
        raise AnnotatorConfigError(
            "the metadata URL must not carry credentials (user:password@): "
            "the metadata service needs none"
        )
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise AnnotatorConfigError(
            f"metadata URL {url!r} has a query or fragment: give the service's root only"
        )
    return url.rstrip("/") + "/"


def read_identity(root: str, policy: RetryPolicy, deadline: Deadline) -> DropletIdentity:
    """Both values, validated; raises an :class:`AnnotatorError` naming the cause."""
    reader = _Reader(root, policy, deadline)
    anchor_url = root + ANCHOR_PATH
    anchor = reader.get(anchor_url)
    if anchor is None:
        raise NoAnchor(
            f"the metadata service has no anchor IPv4 for this droplet (404 at {anchor_url}): "
            "droplets from custom images have none, and a reserved IP cannot reach them"
        )
    anchor_ipv4 = parse_anchor_ipv4(anchor, anchor_url)
    id_url = root + ID_PATH
    droplet_id = reader.get(id_url)
    if droplet_id is None:
        raise MetadataInvalid(
            f"the metadata service has no droplet id (404 at {id_url}): "
            "is the metadata URL a DigitalOcean metadata service?"
        )
    return DropletIdentity(parse_droplet_id(droplet_id, id_url), anchor_ipv4)


class _Reader:
    def __init__(self, root: str, policy: RetryPolicy, deadline: Deadline) -> None:
        self.root = root
        self.policy = policy
        self.deadline = deadline
        self.director = transport.opener()

    def get(self, url: str) -> str | None:
        """The body of a 200 answer, or None for 404; retries what may pass."""
        try:
            return with_retries(
                lambda timeout: self._once(url, timeout),
                policy=self.policy,
                deadline=self.deadline,
            )
        except GaveUp as gave_up:
            raise MetadataUnreachable(
                f"metadata service at {self.root} unreachable after "
                + gave_up.summary(self.deadline.seconds)
            ) from None

    def _once(self, url: str, timeout: float) -> str | None:
        request = urllib.request.Request(url, headers={"Accept": "text/plain"})  # noqa: S310
        reply = transport.send(self.director, request, timeout=timeout, max_bytes=MAX_ANSWER_BYTES)
        if reply.status == 200:
            if reply.oversized:
                raise MetadataInvalid(
                    f"the metadata service answered more than {MAX_ANSWER_BYTES} bytes for "
                    f"{url}: not a metadata value (is the metadata URL right?)"
                )
            return reply.body
        if reply.status == 404:
            return None
        if reply.status == 429 or reply.status >= 500:
            raise Transient(f"HTTP {reply.status}")
        if reply.location:
            raise MetadataInvalid(
                f"the metadata service answered a redirect (HTTP {reply.status}) for {url}, "
                "not followed: the metadata service does not redirect"
            )
        raise MetadataInvalid(f"the metadata service answered HTTP {reply.status} for {url}")
