"""Derives the committed subset of DigitalOcean's OpenAPI description that the imitation serves.

The full bundled description (2.9 MB of YAML) is handed to the project beside the repository;
tests and the demo read only the subset this writes, so a plain clone carries its contract.

    python -m tools.derive_openapi [SOURCE.yaml]            # rewrite the subset
    python -m tools.derive_openapi [SOURCE.yaml] --check    # exit 1 when stale

The subset keeps every operation of the paths below, with their schemas (the bundle has every
``$ref`` resolved already, which this checks), plus what validation needs from the document's
top level. Its ``x-provenance`` names the source file, the upstream revision and the sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from testbed.do_imitation.contract import SUBSET

# Where the team hands the full description over: beside the repository, read only here.
HANDED_OVER = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "do-openapi"
    / "digitalocean-public-v2.bundled.yaml"
)

# What the function, the doctor and the imitation call; a new call adds its path here.
PATHS = (
    "/v2/account",
    "/v2/actions/{action_id}",
    "/v2/droplets",
    "/v2/droplets/{droplet_id}",
    "/v2/droplets/{droplet_id}/firewalls",
    "/v2/firewalls",
    "/v2/firewalls/{firewall_id}",
    "/v2/firewalls/{firewall_id}/droplets",
    "/v2/firewalls/{firewall_id}/rules",
    "/v2/firewalls/{firewall_id}/tags",
    "/v2/kubernetes/clusters",
    "/v2/kubernetes/clusters/{cluster_id}",
    "/v2/kubernetes/clusters/{cluster_id}/credentials",
    "/v2/kubernetes/clusters/{cluster_id}/kubeconfig",
    "/v2/kubernetes/clusters/{cluster_id}/node_pools",
    "/v2/reserved_ips",
    "/v2/reserved_ips/{reserved_ip}",
    "/v2/reserved_ips/{reserved_ip}/actions",
    "/v2/reserved_ips/{reserved_ip}/actions/{action_id}",
    "/v2/tags",
    "/v2/tags/{tag_id}",
)
_TOP_LEVEL = ("openapi", "info", "servers", "security")
_UPSTREAM_COMMIT = re.compile(r"\bcommit ([0-9a-f]{40})\b")


class DerivationError(Exception):
    """The source cannot yield the subset; the message names what is missing."""


class _TextTimestampLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Keeps timestamps as the text the spec wrote (JSON has no dates; examples stay exact)."""


_TextTimestampLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def derive(source: Path) -> dict[str, Any]:
    raw = source.read_bytes()
    document = yaml.load(raw, Loader=_TextTimestampLoader)
    missing = [p for p in PATHS if p not in document.get("paths", {})]
    if missing:
        raise DerivationError(f"{source.name} lacks the paths {', '.join(missing)}")
    subset: dict[str, Any] = {k: document[k] for k in _TOP_LEVEL if k in document}
    subset["paths"] = {p: document["paths"][p] for p in PATHS}
    schemes = document.get("components", {}).get("securitySchemes")
    if schemes:
        subset["components"] = {"securitySchemes": schemes}
    if '"$ref"' in json.dumps(subset["paths"]):
        raise DerivationError(f"{source.name} still has $ref in the kept paths; bundle it first")
    subset["x-provenance"] = {
        "source": f"shared/do-openapi/{source.name}",
        "upstream": "github.com/digitalocean/openapi",
        "upstream_revision": _upstream_revision(source),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "derived_by": "python -m tools.derive_openapi",
    }
    return subset


def _upstream_revision(source: Path) -> str:
    readme = source.with_name("README.md")
    found = _UPSTREAM_COMMIT.search(readme.read_text()) if readme.is_file() else None
    return found.group(1) if found else "unknown"


def render(subset: dict[str, Any]) -> str:
    return json.dumps(subset, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.derive_openapi")
    parser.add_argument(
        "source",
        type=Path,
        nargs="?",
        default=HANDED_OVER,
        help="the bundled DigitalOcean OpenAPI YAML (default: the one handed over beside the repo)",
    )
    parser.add_argument("--check", action="store_true", help="fail when the subset is stale")
    args = parser.parse_args(argv)
    if not args.source.is_file():
        print(f"derive_openapi: no such file: {args.source}", file=sys.stderr)
        return 2
    try:
        text = render(derive(args.source))
    except DerivationError as error:
        print(f"derive_openapi: {error}", file=sys.stderr)
        return 2
    if args.check:
        if not SUBSET.is_file() or SUBSET.read_text() != text:
            print(
                f"derive_openapi: {SUBSET.name} is stale; run make openapi-subset", file=sys.stderr
            )
            return 1
        print(f"{SUBSET.name} is up to date")
        return 0
    SUBSET.write_text(text)
    print(f"wrote {SUBSET.name} ({len(text) // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
