"""A local development certificate for `./stack up --tls` (and the https tests), made with `trustme`.

A private CA signs a server certificate for 127.0.0.1 and localhost. The files stay in the state
directory; clients trust `ca.pem` (Python: SSL_CERT_FILE or REQUESTS_CA_BUNDLE; browsers: import it).
Development only: production certificates come from the operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme

HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path

    def env(self) -> dict[str, str]:
        return {"PORTAL_TLS_CERT": str(self.cert), "PORTAL_TLS_KEY": str(self.key)}


def development_certificate(state_dir: Path) -> TlsFiles:
    """The CA and server certificate under `<state_dir>/tls`, made on first use."""
    folder = state_dir / "tls"
    files = TlsFiles(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    if all(p.exists() for p in (files.ca, files.cert, files.key)):
        return files
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="Patient portal local development")
    leaf = ca.issue_cert(*HOSTS)
    ca.cert_pem.write_to_path(str(files.ca))
    with files.cert.open("wb") as fh:
        for pem in leaf.cert_chain_pems:
            fh.write(pem.bytes())
    files.key.touch(mode=0o600)
    leaf.private_key_pem.write_to_path(str(files.key))
    return files
