"""The real node's identities, client certificates signed by the test control plane's CA
(pki.py): the kubelet's `system:node:<name>` in group `system:nodes` (the API server's Node
authorizer gives it exactly a node's rights) and kube-proxy's `system:kube-proxy` (bound
to the bootstrap role `system:node-proxier`)."""
from __future__ import annotations

import datetime
from pathlib import Path

import yaml

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import pki as pki_mod


def write_node_kubeconfig(pki: pki_mod.Pki, server: str, node: str, out_dir: Path) -> Path:
    return write_client_kubeconfig(pki, server, pki_mod.ClientIdentity(
        "kubelet", f"system:node:{node}", "system:nodes"), out_dir)


def write_kube_proxy_kubeconfig(pki: pki_mod.Pki, server: str, out_dir: Path) -> Path:
    return write_client_kubeconfig(pki, server, pki_mod.ClientIdentity(
        "kube-proxy", "system:kube-proxy"), out_dir)


def write_client_kubeconfig(pki: pki_mod.Pki, server: str, identity: pki_mod.ClientIdentity,
                            out_dir: Path) -> Path:
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key((pki.dir / "ca.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(
            ([x509.NameAttribute(NameOID.ORGANIZATION_NAME, identity.organization)]
             if identity.organization else [])
            + [x509.NameAttribute(NameOID.COMMON_NAME, identity.common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out_dir / f"{identity.name}.crt", out_dir / f"{identity.name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "nas-test", "cluster": {
            "server": server, "certificate-authority": str(pki.ca_cert)}}],
        "users": [{"name": identity.name, "user": {
            "client-certificate": str(cert_path), "client-key": str(key_path)}}],
        "contexts": [{"name": "nas-test", "context": {"cluster": "nas-test", "user": identity.name}}],
        "current-context": "nas-test",
    }
    path = out_dir / f"{identity.name}.kubeconfig"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path
