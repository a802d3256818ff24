"""Certificates and keys of a throwaway control plane, and the kubeconfigs that use them.

ECDSA P-256 everywhere: generating it takes milliseconds, where RSA-2048 takes ~100 ms
a key on this kind of machine.
"""
from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
KUBERNETES_SERVICE_IP = "10.0.0.1"  # first address of the range, as the apiserver picks


@dataclass(frozen=True)
class ClientIdentity:
    """A client certificate; `organization` becomes the user's group."""

    name: str  # file stem and kubeconfig user name
    common_name: str
    organization: str | None = None


# The components authenticate as the users the bootstrap RBAC roles are written for.
ADMIN = ClientIdentity("admin", "nas-test-admin", "system:masters")
CONTROLLER_MANAGER = ClientIdentity("controller-manager", "system:kube-controller-manager")
SCHEDULER = ClientIdentity("scheduler", "system:kube-scheduler")


@dataclass(frozen=True)
class Pki:
    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def serving_cert(self) -> Path:
        return self.dir / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.dir / "apiserver.key"

    @property
    def sa_private_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_public_key(self) -> Path:
        return self.dir / "sa.pub"

    def client_cert(self, who: ClientIdentity) -> Path:
        return self.dir / f"{who.name}.crt"

    def client_key(self, who: ClientIdentity) -> Path:
        return self.dir / f"{who.name}.key"


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, mode: int = 0o600) -> None:
    path.write_bytes(data)
    path.chmod(mode)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _builder(subject: x509.Name, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate clock skew
        .not_valid_after(now + datetime.timedelta(days=7))
    )


def generate(dir: Path) -> Pki:
    """A CA, the apiserver's serving certificate, client certificates for the admin and
    the components, and the service-account token signing key pair."""
    dir.mkdir(parents=True, exist_ok=True)
    pki = Pki(dir)

    ca_key = _new_key()
    ca_name = _name("nas-operator-test-ca")
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(pki.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(dir / "ca.key", _key_pem(ca_key))  # the real node's certificates (real_node_pki.py)

    def issue(key, subject: x509.Name, usage, san: x509.SubjectAlternativeName | None):
        builder = _builder(subject, ca_name, key.public_key()).add_extension(
            x509.ExtendedKeyUsage([usage]), critical=False
        )
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    # The names in-cluster clients may use for the API server.
    serving_key = _new_key()
    san = x509.SubjectAlternativeName(
        [x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
         x509.IPAddress(ipaddress.ip_address(KUBERNETES_SERVICE_IP)),
         x509.DNSName("localhost"),
         x509.DNSName("kubernetes"),
         x509.DNSName("kubernetes.default"),
         x509.DNSName("kubernetes.default.svc"),
         x509.DNSName("kubernetes.default.svc.cluster.local")]
    )
    _write(pki.serving_cert,
           issue(serving_key, _name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, san), 0o644)
    _write(pki.serving_key, _key_pem(serving_key))

    for who in (ADMIN, CONTROLLER_MANAGER, SCHEDULER):
        key = _new_key()
        cert = issue(key, _name(who.common_name, who.organization),
                     ExtendedKeyUsageOID.CLIENT_AUTH, None)
        _write(pki.client_cert(who), cert, 0o644)
        _write(pki.client_key(who), _key_pem(key))

    sa_key = _new_key()
    _write(pki.sa_private_key, _key_pem(sa_key))
    _write(pki.sa_public_key, sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)
    return pki


def write_kubeconfig(path: Path, server: str, pki: Pki, who: ClientIdentity) -> Path:
    """A kubeconfig for `who` with absolute file references (readable by kubectl, helm,
    kopf and the Python client alike)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "nas-test", "cluster": {
            "server": server, "certificate-authority": str(pki.ca_cert)}}],
        "users": [{"name": who.name, "user": {
            "client-certificate": str(pki.client_cert(who)),
            "client-key": str(pki.client_key(who))}}],
        "contexts": [{"name": "nas-test", "context": {"cluster": "nas-test", "user": who.name}}],
        "current-context": "nas-test",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path
