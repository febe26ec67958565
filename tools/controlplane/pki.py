"""The throwaway PKI of a test control plane, laid out as kubeadm lays out /etc/kubernetes/pki.

One cluster CA signs the API server's serving certificate and every client certificate (admin, the
controller manager, the scheduler, each simulated node); a separate key signs service-account tokens.
Client identities are those kubeadm gives (cmd/kubeadm/app/phases/certs and kubeconfig at v1.35):
`system:kube-controller-manager`, `system:kube-scheduler`, `system:node:<name>` in `system:nodes`, so the
real authorizers (Node, RBAC) and NodeRestriction judge them exactly as in a kubeadm cluster.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tools.lab.pki import CertificateAuthority, make_ca

# The first address of kubeadm's default service subnet (10.96.0.0/12) is the `kubernetes` Service.
SERVICE_CIDR = "10.96.0.0/12"
KUBERNETES_SERVICE_IP = "10.96.0.1"
APISERVER_NAMES = (
    "127.0.0.1",
    "localhost",
    KUBERNETES_SERVICE_IP,
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _sign(
    ca: CertificateAuthority,
    common_name: str,
    organizations: tuple[str, ...],
    usage: x509.ObjectIdentifier,
    sans: tuple[str, ...] = (),
) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attributes))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    if sans:
        names: list[x509.GeneralName] = []
        for host in sans:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


@dataclass(frozen=True)
class ClientCredentials:
    """A client certificate and key on disk, for a kubeconfig or a REST client."""

    user: str
    cert_file: Path
    key_file: Path


class ClusterPKI:
    """Writes the CA, the serving certificate, the service-account keys and client certificates under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.ca = make_ca("dsaas test cluster CA")
        self.ca_file = self.ca.write_cert(root / "ca.crt")
        self.ca_key_file = root / "ca.key"
        self.ca_key_file.write_bytes(_key_pem(self.ca.key))
        self.ca_key_file.chmod(0o600)
        cert, key = _sign(self.ca, "kube-apiserver", (), ExtendedKeyUsageOID.SERVER_AUTH, APISERVER_NAMES)
        self.apiserver_cert_file, self.apiserver_key_file = self._write("apiserver", cert, key)
        sa_key = ec.generate_private_key(ec.SECP256R1())
        self.service_account_key_file = root / "sa.key"
        self.service_account_key_file.write_bytes(_key_pem(sa_key))
        self.service_account_key_file.chmod(0o600)
        self.service_account_pub_file = root / "sa.pub"
        self.service_account_pub_file.write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def _write(self, name: str, cert: bytes, key: bytes) -> tuple[Path, Path]:
        cert_file, key_file = self.root / f"{name}.crt", self.root / f"{name}.key"
        cert_file.write_bytes(cert)
        key_file.write_bytes(key)
        key_file.chmod(0o600)
        return cert_file, key_file

    def client(self, user: str, groups: tuple[str, ...] = ()) -> ClientCredentials:
        """A client certificate for `user` in `groups` (the API server reads CN as user, O as groups)."""
        cert, key = _sign(self.ca, user, groups, ExtendedKeyUsageOID.CLIENT_AUTH)
        file_stem = user.replace(":", "-")
        cert_file, key_file = self._write(file_stem, cert, key)
        return ClientCredentials(user, cert_file, key_file)
