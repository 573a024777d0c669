import datetime as dt
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from tools.stack.certs import Pki, make_certificates

LOCALHOST = x509.DNSName("localhost")
LOOPBACK = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_certificates(tmp_path_factory.mktemp("stack") / "tls")


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_server_certificate_verifies_against_the_ca_for_this_machine(pki: Pki) -> None:
    ca, server = load(pki.ca), load(pki.server_cert)
    for name in (LOCALHOST, LOOPBACK):
        verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(name)
        chain = verifier.verify(server, [])
        assert chain[-1] == ca
    other = PolicyBuilder().store(Store([ca])).build_server_verifier(x509.DNSName("example.com"))
    with pytest.raises(VerificationError):
        other.verify(server, [])


def test_the_client_certificate_is_the_cas_and_for_clients(pki: Pki) -> None:
    ca, client = load(pki.ca), load(pki.client_cert)
    client.verify_directly_issued_by(ca)
    usages = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in usages


def test_keys_are_unencrypted_pkcs8_readable_by_their_owner_only(pki: Pki) -> None:
    for key in (pki.server_key, pki.client_key, pki.server_keystore):
        assert mode(key) == 0o600, key
        assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----\n"), key
    assert mode(pki.folder) == 0o700
    assert not list(pki.folder.glob("ca.key")), "the CA's key is never written"


def test_kafkas_keystore_is_the_key_then_the_chain(pki: Pki) -> None:
    keystore = pki.server_keystore.read_text()
    server, ca = pki.server_cert.read_text(), pki.ca.read_text()
    assert keystore == pki.server_key.read_text() + server + ca


def _pump(a: ssl.MemoryBIO, b: ssl.MemoryBIO) -> None:
    data = a.read()
    if data:
        b.write(data)


def test_a_mutual_tls_handshake_with_the_files_succeeds(pki: Pki) -> None:
    """What the servers and clients do, by OpenSSL: the client trusts the CA
    only and checks the address; the server asks for the client's certificate."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(pki.server_cert, pki.server_key)
    server_context.load_verify_locations(pki.ca)
    server_context.verify_mode = ssl.CERT_REQUIRED
    client_context = ssl.create_default_context(cafile=str(pki.ca))
    client_context.load_cert_chain(pki.client_cert, pki.client_key)
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context.wrap_bio(to_client, to_server, server_hostname="127.0.0.1")
    server = server_context.wrap_bio(server_in, server_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, end in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        _pump(to_server, server_in)
        _pump(server_out, to_client)
    assert done == {"client": True, "server": True}
    assert server.getpeercert()["subject"] == ((("commonName", "docstream-client"),),)


def test_the_files_are_reused_while_present_and_current(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "tls").ensure()
    first = pki.ca.read_bytes()
    assert pki.ensure().ca.read_bytes() == first
    expiry = load(pki.server_cert).not_valid_after_utc
    assert not pki.current(now=expiry - dt.timedelta(hours=1)), "renewed a day before expiry"
    pki.client_key.unlink()
    assert pki.ensure().ca.read_bytes() != first, "a missing file: a whole new set"
