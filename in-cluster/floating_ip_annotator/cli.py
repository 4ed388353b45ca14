"""Command line and environment: how a Pod spec configures the annotator."""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from floating_ip_annotator import kube, metadata
from floating_ip_annotator.annotate import AnnotatorSettings, Result, WriteOutcome, run
from floating_ip_annotator.errors import AnnotatorConfigError, AnnotatorError, ExitCode
from floating_ip_annotator.kube import Target
from floating_ip_annotator.retry import RetryPolicy
from floating_ip_common.contract import ANCHOR_IPV4, DROPLET_ID

PROG = "floating-ip-annotator"
# Generous bounds: past them a value is a typo, and a run must stay bounded.
MAX_SECONDS = 3600.0
MAX_ATTEMPTS = 100
# Kubernetes names: a Pod or Node name is a DNS subdomain, a namespace a DNS label.
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog=PROG,
        description=(
            f"Write the droplet's anchor IPv4 ({ANCHOR_IPV4}) and id ({DROPLET_ID}) onto this "
            "container's Pod (POD_NAME, POD_NAMESPACE) or, with --node, onto its Node "
            "(NODE_NAME)."
        ),
    )
    cli.add_argument(
        "--node", action="store_true", help="annotate the Node named by NODE_NAME instead"
    )
    cli.add_argument(
        "--metadata-url",
        help=f"root of the metadata service (env METADATA_URL, default {metadata.DEFAULT_URL})",
    )
    cli.add_argument(
        "--timeout", type=_seconds, default=30.0, help="seconds for the whole run (default 30)"
    )
    cli.add_argument(
        "--request-timeout",
        type=_seconds,
        default=5.0,
        help="seconds for one HTTP request (default 5)",
    )
    cli.add_argument("--attempts", type=_positive_int, default=5, help="tries per call (default 5)")
    cli.add_argument("--token-file", type=Path, default=kube.TOKEN_FILE)
    cli.add_argument("--ca-file", type=Path, default=kube.CA_FILE)
    return cli


def settings(args: argparse.Namespace, environ: Mapping[str, str]) -> AnnotatorSettings:
    return AnnotatorSettings(
        target=_target(args.node, environ),
        metadata_root=metadata.check_url(
            args.metadata_url or environ.get("METADATA_URL") or metadata.DEFAULT_URL
        ),
        token_file=args.token_file,
        ca_file=args.ca_file,
        environ=environ,
        timeout=args.timeout,
        policy=RetryPolicy(attempts=args.attempts, request_timeout=args.request_timeout),
    )


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = settings(args, os.environ if environ is None else environ)
        result = run(config)
    except AnnotatorError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr, flush=True)
        return int(error.exit_code)
    print(f"{PROG}: {report(config.target, result)}", flush=True)
    return int(ExitCode.OK)


def report(target: Target, result: Result) -> str:
    identity = result.identity
    values = f"{ANCHOR_IPV4}={identity.anchor_ipv4} {DROPLET_ID}={identity.droplet_id}"
    if result.outcome is WriteOutcome.WRITTEN:
        return f"annotated {target}: {values}"
    return f"{target} already has {values}: nothing to write"


def _target(node: bool, environ: Mapping[str, str]) -> Target:
    if node:
        return Target("node", _required(environ, "NODE_NAME", "spec.nodeName", _DNS_SUBDOMAIN))
    return Target(
        "pod",
        _required(environ, "POD_NAME", "metadata.name", _DNS_SUBDOMAIN),
        _required(environ, "POD_NAMESPACE", "metadata.namespace", _DNS_LABEL),
    )


def _required(environ: Mapping[str, str], name: str, field_path: str, form: re.Pattern[str]) -> str:
    """A name for the API path: checked, so ``../``, ``%2F`` or a line break never reach
    a URL or a log line as they are."""
    value = environ.get(name, "")
    if not value:
        raise AnnotatorConfigError(
            f"{name} is not set: give it from the downward API "
            f"(valueFrom.fieldRef.fieldPath: {field_path})"
        )
    if not form.fullmatch(value):
        rule = (
            "lower-case letters, digits, '-' and '.', at most 253 characters"
            if form is _DNS_SUBDOMAIN
            else "lower-case letters, digits and '-', at most 63 characters"
        )
        raise AnnotatorConfigError(
            f"{name} {value[:80]!r} is not a Kubernetes name ({rule}): give it from the "
            f"downward API (valueFrom.fieldRef.fieldPath: {field_path})"
        )
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and 0 < value <= MAX_SECONDS):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds between 0 and {MAX_SECONDS:g}"
        )
    return value


def _positive_int(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_ATTEMPTS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to {MAX_ATTEMPTS}")
    return int(text)
