"""Command line and environment: how a Pod spec configures the annotator."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from floating_ip.contract import ANCHOR_IPV4, DROPLET_ID
from floating_ip_annotator import kube, metadata
from floating_ip_annotator.annotate import AnnotatorSettings, Result, WriteOutcome, run
from floating_ip_annotator.errors import AnnotatorConfigError, AnnotatorError, ExitCode
from floating_ip_annotator.kube import Target
from floating_ip_annotator.retry import RetryPolicy

PROG = "floating-ip-annotator"


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
        return Target("node", _required(environ, "NODE_NAME", "spec.nodeName"))
    return Target(
        "pod",
        _required(environ, "POD_NAME", "metadata.name"),
        _required(environ, "POD_NAMESPACE", "metadata.namespace"),
    )


def _required(environ: Mapping[str, str], name: str, field_path: str) -> str:
    value = environ.get(name, "")
    if not value:
        raise AnnotatorConfigError(
            f"{name} is not set: give it from the downward API "
            f"(valueFrom.fieldRef.fieldPath: {field_path})"
        )
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value
