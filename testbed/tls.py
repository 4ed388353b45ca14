"""A throwaway certificate authority for the test bed, made at run time (never committed).

Servers of the bed (kube-apiserver, the DigitalOcean imitation) present certificates from it;
clients trust it through the usual settings (a CA bundle path, ``KUBE_CA_DATA``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path


class TestCA:
    """One CA per test session; writes PEM files into ``directory``."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._ca = trustme.CA(organization_name="doks-floating-ip test bed")
        self.ca_file = directory / "ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_file))

    @property
    def ca_pem(self) -> bytes:
        return self._ca.cert_pem.bytes()

    @property
    def ca_data(self) -> str:
        """The CA as base64 PEM, the form of a kubeconfig's ``certificate-authority-data``."""
        return base64.b64encode(self.ca_pem).decode()

    def issue(
        self,
        name: str,
        *identities: str,
        common_name: str | None = None,
        organization: str | None = None,
    ) -> CertFiles:
        """Issue a certificate for ``identities`` (hostnames/IPs; may be empty for clients)."""
        cert = self._ca.issue_cert(
            *(identities or ("client.invalid",)),
            common_name=common_name,
            organization_name=organization,
        )
        files = CertFiles(self.directory / f"{name}.crt", self.directory / f"{name}.key")
        cert.cert_chain_pems[0].write_to_path(str(files.cert))
        cert.private_key_pem.write_to_path(str(files.key))
        return files
