"""A throwaway PKI for the secured local stack: a CA, a server certificate for
this machine (localhost and 127.0.0.1) and a client certificate for mutual
TLS, as PEM files. Made once per folder and reused while every file is there
and the server certificate is not about to expire; nothing of it is committed.

The keys are RSA-2048 in unencrypted PKCS#8 ("BEGIN PRIVATE KEY"), mode 0600:
the one form that Kafka's PEM keystore (Java), Neo4j, librdkafka, Python's
ssl and Qdrant (rustls) all read. An encrypted key from `cryptography` is
PKCS#8 with PBES2, which Kafka's PemStore cannot open. The CA's own key is
never written: nothing else is ever signed with it, and a fresh set is made
whenever one is needed."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tools.stack.private_files import private_folder, write_private

VALID_FOR = dt.timedelta(days=365)
# Made again when the server certificate would expire within this.
RENEW_BEFORE = dt.timedelta(days=1)
# Clock skew between this machine and whatever checks the certificates.
BACKDATE = dt.timedelta(minutes=5)
SERVER_NAMES: tuple[x509.GeneralName, ...] = (
    x509.DNSName("localhost"),
    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
)


@dataclass(frozen=True)
class Pki:
    """The PEM files of one folder (`<stack>/tls`)."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def server_cert(self) -> Path:
        return self.folder / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.folder / "server.key"

    @property
    def server_keystore(self) -> Path:
        """The server's key followed by its chain: Kafka's PEM keystore file."""
        return self.folder / "server-keystore.pem"

    @property
    def client_cert(self) -> Path:
        return self.folder / "client.crt"

    @property
    def client_key(self) -> Path:
        return self.folder / "client.key"

    def files(self) -> tuple[Path, ...]:
        return (
            self.ca,
            self.server_cert,
            self.server_key,
            self.server_keystore,
            self.client_cert,
            self.client_key,
        )

    def current(self, now: dt.datetime | None = None) -> bool:
        """Every file is there and the server certificate outlives a day."""
        if not all(path.is_file() for path in self.files()):
            return False
        try:
            server = x509.load_pem_x509_certificate(self.server_cert.read_bytes())
        except ValueError:  # not a certificate (a half-written file): make a new set
            return False
        moment = now or dt.datetime.now(dt.UTC)
        return server.not_valid_after_utc - RENEW_BEFORE > moment

    def ensure(self) -> Pki:
        if not self.current():
            make(self)
        return self


def make_certificates(folder: Path) -> Pki:
    """The PKI in `folder`: made if missing or about to expire, else kept."""
    return Pki(folder).ensure()


def make(pki: Pki) -> None:
    """A new CA and the certificates it signs, replacing whatever was there."""
    private_folder(pki.folder)
    now = dt.datetime.now(dt.UTC)
    ca_key = _new_key()
    ca = _ca_certificate(ca_key, now)
    server_key = _new_key()
    server = _leaf(
        "localhost",
        server_key,
        ca,
        ca_key,
        now,
        # clientAuth too: a broker can present it when it dials another broker.
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        SERVER_NAMES,
    )
    client_key = _new_key()
    client = _leaf(
        "docstream-client", client_key, ca, ca_key, now, [ExtendedKeyUsageOID.CLIENT_AUTH], ()
    )
    write_private(pki.server_key, _key_pem(server_key))
    write_private(pki.server_keystore, _key_pem(server_key) + _cert_pem(server) + _cert_pem(ca))
    write_private(pki.client_key, _key_pem(client_key))
    pki.server_cert.write_bytes(_cert_pem(server))
    pki.client_cert.write_bytes(_cert_pem(client))
    pki.ca.write_bytes(_cert_pem(ca))


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not signs_certificates,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _ca_certificate(key: rsa.RSAPrivateKey, now: dt.datetime) -> x509.Certificate:
    name = _name("docstream local stack CA")
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _leaf(
    common_name: str,
    key: rsa.RSAPrivateKey,
    ca: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
    now: dt.datetime,
    usages: list[x509.ObjectIdentifier],
    names: tuple[x509.GeneralName, ...],
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)
