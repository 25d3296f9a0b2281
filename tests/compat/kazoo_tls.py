#!/usr/bin/env python3
"""kazoo (Python client) over TLS: mutual TLS, the x509 scheme, and refused clients.

Usage: kazoo_tls.py HOST:PORT CERT_DIR SUBJECT_DN need|unified

CERT_DIR holds PEM files made by the test: ca.pem (the trusted CA), client.crt/.key (the
client whose subject is SUBJECT_DN, as Java's X500Principal.getName() prints it),
other.crt/.key (another client of the same CA) and stranger.crt/.key (a client of a CA the
server does not trust).

need: HOST:PORT is a secureClientPort with ssl.clientAuth=need and the X509 provider on.
  - the client creates a znode readable only by x509:SUBJECT_DN and one with
    CREATOR_ALL_ACL, whose ACL must come back as x509:SUBJECT_DN;
  - the other client (trusted, another subject) gets NoAuth on both;
  - no client certificate, an untrusted certificate, and a plain (non-TLS) client are each
    refused, and the first client keeps being served after them.
unified: HOST:PORT is a clientPort with client.portUnification=true: a TLS client and a
  plain client both work on it, and see each other's writes.
"""

from kazoo.exceptions import NoAuthError
from kazoo.security import CREATOR_ALL_ACL, make_acl

from compat_common import CALL_TIMEOUT_S, check, check_eq, close, connect, run, step
from kazoo.client import KazooClient

# How long a client that must be refused is given to connect anyway.
REFUSED_WITHIN_S = 4


def tls_options(cert_dir, who):
    options = {"use_ssl": True, "ca": f"{cert_dir}/ca.pem", "verify_certs": True}
    if who is not None:
        options["certfile"] = f"{cert_dir}/{who}.crt"
        options["keyfile"] = f"{cert_dir}/{who}.key"
    return options


def refused(hosts, what, **options):
    client = KazooClient(hosts=hosts, timeout=CALL_TIMEOUT_S,
                         connection_retry={"max_tries": 2, "delay": 0.2, "max_delay": 0.5},
                         **options)
    try:
        client.start(timeout=REFUSED_WITHIN_S)
    except Exception as e:  # kazoo raises a timeout once every attempt failed
        print(f"refused as expected: {what} ({type(e).__name__})", flush=True)
        return
    finally:
        client.stop()
        client.close()
    raise AssertionError(f"{what} was served")


def need(hosts, cert_dir, dn):
    step("client with its certificate")
    zk = connect(hosts, **tls_options(cert_dir, "client"))
    x509_read_write = make_acl("x509", dn, read=True, write=True, delete=True, admin=True)
    zk.create("/tls-x509", b"secret", acl=[x509_read_write])
    check_eq(zk.get("/tls-x509")[0], b"secret", "x509-protected data read by its owner")
    zk.set("/tls-x509", b"secret2")
    zk.create("/tls-creator", b"mine", acl=CREATOR_ALL_ACL)
    acls, _ = zk.get_acls("/tls-creator")
    check_eq([(a.id.scheme, a.id.id, a.perms) for a in acls], [("x509", dn, 31)],
             "CREATOR_ALL_ACL expanded to the certificate's subject")

    step("another trusted client is refused by the x509 ACLs")
    other = connect(hosts, **tls_options(cert_dir, "other"))
    for path in ("/tls-x509", "/tls-creator"):
        try:
            other.get(path)
        except NoAuthError:
            pass
        else:
            raise AssertionError(f"{path} readable by another certificate")
    other.create("/tls-other", b"ok")
    close(other)

    step("a TLS client without a certificate is refused (ssl.clientAuth=need)")
    refused(hosts, "TLS without a client certificate", **tls_options(cert_dir, None))
    step("a client whose certificate the server does not trust is refused")
    refused(hosts, "untrusted client certificate", **tls_options(cert_dir, "stranger"))
    step("a plain client on the TLS port is refused")
    refused(hosts, "plain client on secureClientPort")

    step("the first client is still served")
    check_eq(zk.get("/tls-x509")[0], b"secret2", "data after the refusals")
    check(zk.exists("/tls-other") is not None, "the other client's write is visible")
    zk.delete("/tls-x509")
    zk.delete("/tls-creator")
    zk.delete("/tls-other")
    close(zk)


def unified(hosts, cert_dir):
    step("TLS client on the unified port")
    secure = connect(hosts, **tls_options(cert_dir, "client"))
    secure.create("/unified", b"over tls")
    step("plain client on the same port")
    plain = connect(hosts)
    check_eq(plain.get("/unified")[0], b"over tls", "plain client reads the TLS client's write")
    plain.set("/unified", b"over tcp")
    check_eq(secure.get("/unified")[0], b"over tcp", "TLS client reads the plain client's write")
    plain.delete("/unified")
    close(secure, plain)


def main(hosts, cert_dir, dn, mode):
    if mode == "need":
        need(hosts, cert_dir, dn)
    elif mode == "unified":
        unified(hosts, cert_dir)
    else:
        raise AssertionError(f"unknown mode {mode}")


if __name__ == "__main__":
    run(main, 120)
