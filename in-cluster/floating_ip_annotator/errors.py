"""Failures by class, each with its own exit code and a message a user can act on."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The process's exit status; the README's table lists the same values."""

    OK = 0
    CONFIG = 2
    """Missing environment, unreadable token or CA file, bad flags (argparse also uses 2)."""
    METADATA_UNREACHABLE = 3
    """The metadata service did not answer (refused, timed out, 5xx) within the retries."""
    METADATA_INVALID = 4
    """The metadata service answered something that is not an IPv4 / droplet id."""
    NO_ANCHOR = 5
    """The droplet has no anchor IPv4 (custom-image droplets): a reserved IP cannot reach it."""
    KUBE_UNREACHABLE = 6
    """The Kubernetes API did not answer (or kept failing) within the retries."""
    PERMISSION = 7
    """The token was rejected (401) or lacks the RBAC rights (403)."""
    KUBE_REJECTED = 8
    """The Kubernetes API refused the request otherwise (object not found, invalid)."""
    MISMATCH = 9
    """Node mode: the Node's providerID names another droplet than the metadata service."""


class AnnotatorError(Exception):
    """A failure that ends the run; ``str()`` is the message for the log."""

    exit_code: ExitCode = ExitCode.CONFIG


class AnnotatorConfigError(AnnotatorError):
    exit_code = ExitCode.CONFIG


class MetadataUnreachable(AnnotatorError):
    exit_code = ExitCode.METADATA_UNREACHABLE


class MetadataInvalid(AnnotatorError):
    exit_code = ExitCode.METADATA_INVALID


class NoAnchor(AnnotatorError):
    exit_code = ExitCode.NO_ANCHOR


class KubeUnreachable(AnnotatorError):
    exit_code = ExitCode.KUBE_UNREACHABLE


class PermissionDenied(AnnotatorError):
    exit_code = ExitCode.PERMISSION


class KubeRejected(AnnotatorError):
    exit_code = ExitCode.KUBE_REJECTED


class IdentityMismatch(AnnotatorError):
    exit_code = ExitCode.MISMATCH


class Transient(Exception):
    """Raised inside a retried call: worth another attempt. ``str()`` names the cause."""
