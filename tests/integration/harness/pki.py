"""Test PKI made with certtool and openssl: one CA, server certificates for
localhost / 127.0.0.1, keys of every supported type and encoding."""
import os
import subprocess
from pathlib import Path

KEY_TYPES = {
    "rsa2048": ["--key-type", "rsa", "--bits", "2048"],
    "rsa3072": ["--key-type", "rsa", "--bits", "3072"],
    "rsa4096": ["--key-type", "rsa", "--bits", "4096"],
    "p256": ["--key-type", "ecdsa", "--curve", "secp256r1"],
    "p384": ["--key-type", "ecdsa", "--curve", "secp384r1"],
    "ed25519": ["--key-type", "ed25519"],
}

SERVER_TEMPLATE = """cn = {cn}
dns_name = localhost
dns_name = {cn}
ip_address = 127.0.0.1
serial = {serial}
tls_www_server
signing_key
encryption_key
expiration_days = 30
"""


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, timeout=120, **kw)


class Pki:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._serial = 100
        self.ca_key = self.root / "ca.key"
        self.ca_cert = self.root / "ca.pem"
        run(["certtool", "--generate-privkey", "--key-type", "ecdsa", "--outfile", self.ca_key])
        tmpl = self.root / "ca.tmpl"
        tmpl.write_text("cn = mod_gnutls test CA\nca\ncert_signing_key\nexpiration_days = 30\n")
        run(["certtool", "--generate-self-signed", "--load-privkey", self.ca_key,
             "--template", tmpl, "--outfile", self.ca_cert])

    def key(self, name, key_type):
        path = self.root / f"{name}.key"
        run(["certtool", "--generate-privkey", *KEY_TYPES[key_type], "--outfile", path])
        return path

    def certify(self, name, key=None, pubkey=None, cn="localhost", ocsp_uri=None, dns_names=()):
        """Issues a server certificate for a private key file or a public key
        file; returns the chain file (server certificate, then the CA).
        dns_names are further subjectAltNames (a wildcard like *.a.test)."""
        self._serial += 1
        tmpl = self.root / f"{name}.tmpl"
        tmpl.write_text(SERVER_TEMPLATE.format(cn=cn, serial=self._serial) +
                        "".join(f"dns_name = {n}\n" for n in dns_names) +
                        (f'ocsp_uri = "{ocsp_uri}"\n' if ocsp_uri else ""))
        cert = self.root / f"{name}.crt"
        load = ["--load-privkey", key] if key else ["--load-pubkey", pubkey]
        run(["certtool", "--generate-certificate", *load, "--load-ca-privkey", self.ca_key,
             "--load-ca-certificate", self.ca_cert, "--template", tmpl, "--outfile", cert])
        chain = self.root / f"{name}-chain.pem"
        chain.write_text(cert.read_text() + self.ca_cert.read_text())
        return chain

    def identity(self, name, key_type, cn="localhost", dns_names=()):
        key = self.key(name, key_type)
        return self.certify(name, key=key, cn=cn, dns_names=dns_names), key

    def client(self, name, eku="tls_www_client", ca=None, dates=None, email=None):
        """A client certificate: eku is the template line for the key purpose
        (None for no EKU); ca=(cert, key) for another issuer; dates=(start,
        end) as 'YYYY-MM-DD HH:MM:SS' strings."""
        key = self.key(name, "p256")
        self._serial += 1
        lines = [f"cn = {name}", f"serial = {self._serial}", "signing_key", "organization = Test Users"]
        if eku:
            lines.append(eku)
        if email:
            lines.append(f"email = {email}")
        if dates:
            lines += [f'activation_date = "{dates[0]}"', f'expiration_date = "{dates[1]}"']
        else:
            lines.append("expiration_days = 30")
        tmpl = self.root / f"{name}.tmpl"
        tmpl.write_text("\n".join(lines) + "\n")
        cert = self.root / f"{name}.crt"
        ca_cert, ca_key = ca or (self.ca_cert, self.ca_key)
        run(["certtool", "--generate-certificate", "--load-privkey", key, "--load-ca-privkey", ca_key,
             "--load-ca-certificate", ca_cert, "--template", tmpl, "--outfile", cert])
        return cert, key

    def crl(self, name, revoked_certs):
        """A CRL from the test CA revoking the given certificate files."""
        crl = self.root / f"{name}.crl"
        tmpl = self.root / f"{name}-crl.tmpl"
        tmpl.write_text("crl_next_update = 30\ncrl_number = 1\n")
        pem = "".join(Path(c).read_text() for c in revoked_certs)
        revoked = self.root / f"{name}-revoked.pem"
        revoked.write_text(pem)
        run(["certtool", "--generate-crl", "--load-ca-privkey", self.ca_key, "--load-ca-certificate", self.ca_cert,
             "--load-certificate", revoked, "--template", tmpl, "--outfile", crl])
        return crl

    def other_ca(self, name):
        key = self.root / f"{name}.key"
        run(["certtool", "--generate-privkey", "--key-type", "ecdsa", "--outfile", key])
        tmpl = self.root / f"{name}.tmpl"
        tmpl.write_text(f"cn = {name}\nca\ncert_signing_key\nexpiration_days = 30\n")
        cert = self.root / f"{name}.pem"
        run(["certtool", "--generate-self-signed", "--load-privkey", key, "--template", tmpl, "--outfile", cert])
        return cert, key

    # Other encodings of an existing key, made with openssl.
    def reencode(self, key, name, *args, stdin=None):
        out = self.root / name
        run(["openssl", *args, "-in", key, "-out", out], input=stdin)
        return out
