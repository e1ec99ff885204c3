"""gnutls-keystore, the key doctor, against real keys: files (plain and
encrypted), SoftHSM2 tokens (key and certificate on the token) and a swtpm
TPM 2.0 key. `check` says what mod_gnutls would say, in the same words, and
exits 1 when mod_gnutls would refuse to start; `speed` signs."""
import os
import subprocess
from pathlib import Path

import pytest

from harness.softhsm import SOFTHSM, SoftHsm
from harness.swtpm import Swtpm

PIN = "31415926"


def doctor_path():
    path = os.environ.get("MGS_KEY_DOCTOR") or str(Path(os.environ["MGS_MODULE"]).parent / "gnutls-keystore")
    assert Path(path).is_file(), f"no key doctor at {path}"
    return path


def doctor(*args, env=None):
    r = subprocess.run([doctor_path(), *map(str, args)], capture_output=True, text=True, timeout=120,
                       env={**os.environ, **(env or {})})
    return r.returncode, r.stdout, r.stderr


@pytest.mark.parametrize("key_type,pk,signer", [("p256", "ECDSA", "gnutls"), ("rsa2048", "RSA", "libcrypto"),
                                                ("ed25519", "EdDSA", "gnutls")])
def test_file_key_and_its_chain(pki, key_type, pk, signer):
    chain, key = pki.identity(f"doctor-{key_type}", key_type)
    rc, out, err = doctor("check", key, "--cert", chain)
    assert rc == 0, out + err
    assert f"backend file, signed by {signer}" in out and pk in out, out
    assert "signs and verifies" in out and "cannot sign" not in out and "does not verify" not in out, out
    assert "(2 certificates, in order)" in out and "the key matches the certificate" in out, out


def test_a_key_that_does_not_match_its_certificate(pki):
    _, key = pki.identity("doctor-mismatch-a", "p256")
    other_chain, _ = pki.identity("doctor-mismatch-b", "p256")
    rc, out, err = doctor("check", key, "--cert", other_chain)
    assert rc == 1, out + err
    assert (f"GnuTLSKeyFile: the private key {key} does not match the certificate in {other_chain} "
            "(subject CN=localhost)") in err, err


def test_an_out_of_order_chain(pki, tmp_path):
    chain, key = pki.identity("doctor-order", "p256")
    certs = chain.read_text().split("-----END CERTIFICATE-----\n")
    swapped = tmp_path / "swapped.pem"
    swapped.write_text(certs[1] + "-----END CERTIFICATE-----\n" + certs[0] + "-----END CERTIFICATE-----\n")
    rc, out, err = doctor("check", key, "--cert", swapped)
    assert rc == 1 and "GnuTLSCertificateFile:" in err, out + err


def test_an_encrypted_key_and_its_passphrase(pki, tmp_path):
    _, key = pki.identity("doctor-enc", "p256")
    enc = tmp_path / "enc.key"
    subprocess.run(["certtool", "--load-privkey", str(key), "--to-p8", "--password", "right horse",
                    "--outfile", str(enc)], check=True, capture_output=True)
    assert doctor("check", enc, "--pin", "right horse")[0] == 0
    rc, out, err = doctor("check", enc, "--pin", "wrong horse")
    assert rc == 1 and "wrong passphrase (GnuTLSPIN)" in err, err
    assert "wrong horse" not in out + err
    rc, out, err = doctor("check", enc)
    assert rc == 1 and "is encrypted and no passphrase is configured" in err, err
    pin_file = tmp_path / "pin"
    pin_file.write_text("right horse\n")
    assert doctor("check", enc, "--pin-source", f"file:{pin_file}")[0] == 0


def test_token_key_and_certificate(pki):
    hsm = SoftHsm()
    try:
        hsm.token("doctor", PIN)
        url, pub = hsm.generate("doctor", PIN, "web")
        chain = pki.certify("doctor-token", pubkey=pub)
        cert_url = hsm.store_certificate("doctor", PIN, "web", chain)
        rc, out, err = doctor("check", url, "--pin", PIN, "--module", SOFTHSM, "--cert", cert_url, env=hsm.env)
        assert rc == 0, out + err
        assert "backend pkcs11, signed by pkcs11" in out and "the key matches the certificate" in out, out
        rc, out, err = doctor("check", url, "--pin", "00000000", "--module", SOFTHSM, env=hsm.env)
        assert rc == 1 and "GnuTLSKeyFile:" in err, out + err
        assert "00000000" not in out + err and PIN not in out + err
        rc, out, err = doctor("speed", url, "--pin", PIN, "--module", SOFTHSM, "--threads", "2", "--seconds", "1",
                              env=hsm.env)
        assert rc == 0 and "2 threads:" in out and ", 0 failed" in out, out + err
        rc, out, err = doctor("check", "pkcs11:token=doctor;object=web;bogus", "--module", SOFTHSM, env=hsm.env)
        assert rc == 1 and "pkcs11:" in err, err
    finally:
        hsm.remove()


def test_list_tokens_objects_and_tpm_handles(pki):
    hsm = SoftHsm()
    tpm = Swtpm()
    try:
        hsm.token("listed", PIN)
        url, pub = hsm.generate("listed", PIN, "www")
        hsm.store_certificate("listed", PIN, "www", pki.certify("doctor-list", pubkey=pub))
        rc, out, err = doctor("list", "--module", SOFTHSM, env=hsm.env)
        assert rc == 0, out + err
        assert 'label "listed"' in out and "token=listed" in out, out
        assert "object=www" in out and "type=cert" in out, out
        assert "private keys: give --pin" in out and "type=private" not in out, out
        rc, out, err = doctor("list", "--module", SOFTHSM, "--pin", PIN, "--tcti", tpm.tcti, env=hsm.env)
        assert rc == 0, out + err
        assert "type=private" in out and PIN not in out, out
        # The URL it prints is one the module (and check) can use.
        key_url = next(line.split()[-1] for line in out.splitlines() if "type=private" in line)
        assert doctor("check", key_url, "--pin", PIN, "--module", SOFTHSM, env=hsm.env)[0] == 0
        tpm.persistent_key("0x81000031")
        rc, out, err = doctor("list", "--module", SOFTHSM, "--tcti", tpm.tcti, env=hsm.env)
        assert rc == 0 and "handle:0x81000031" in out, out + err
    finally:
        hsm.remove()
        tpm.remove()


@pytest.mark.parametrize("key_type,pk", [("ecdsa-p256", "ECDSA"), ("rsa2048", "RSA")])
def test_new_key_in_a_token_and_its_request(pki, tmp_path, key_type, pk):
    """new makes the key inside the token and a request the token signed;
    the certificate a CA issues from it serves with the new key; the label
    is not reused, and the PIN is needed and never shown."""
    hsm = SoftHsm()
    try:
        hsm.token("fresh", PIN)
        url = "pkcs11:token=fresh;object=www"
        csr = tmp_path / "www.csr"
        rc, out, err = doctor("new", url, "--pin", PIN, "--module", SOFTHSM, "--type", key_type,
                              "--subject", "CN=www.example.test,O=Example", "--dns", "www.example.test",
                              "--csr", csr, env=hsm.env)
        assert rc == 0, out + err
        assert PIN not in out + err
        key_url = next(line.split()[1] for line in out.splitlines() if line.startswith("key: "))
        assert "token=fresh" in key_url and "object=www" in key_url and "type=private" in key_url, out
        info = subprocess.run(["certtool", "--crq-info", "--infile", str(csr)], capture_output=True, text=True)
        assert info.returncode == 0 and "CN=www.example.test" in info.stdout, info.stdout + info.stderr
        assert "www.example.test" in info.stdout and pk in info.stdout, info.stdout
        assert "Self signature: verified" in info.stdout, info.stdout
        # A CA signs the request's key: check passes with the token key.
        pub = tmp_path / "pub.pem"
        subprocess.run(["p11tool", "--provider", SOFTHSM, "--export-pubkey", "--login", key_url,
                        "--outfile", str(pub)], check=True, capture_output=True, env={**os.environ, **hsm.env,
                                                                                    "GNUTLS_PIN": PIN})
        chain = pki.certify("doctor-new-" + key_type, pubkey=pub, cn="www.example.test")
        rc, out, err = doctor("check", key_url, "--pin", PIN, "--module", SOFTHSM, "--cert", chain, env=hsm.env)
        assert rc == 0 and "the key matches the certificate" in out, out + err
        # The same label again: refused, nothing changed.
        rc, out, err = doctor("new", url, "--pin", PIN, "--module", SOFTHSM, "--subject", "CN=x", env=hsm.env)
        assert rc == 1 and "already holds a private key labelled 'www'" in err, out + err
        rc, out, err = doctor("new", "pkcs11:token=fresh;object=other", "--module", SOFTHSM, "--subject", "CN=x",
                              env=hsm.env)
        assert rc == 2 and "--pin or --pin-source" in err, err
        rc, out, err = doctor("new", "pkcs11:token=fresh;object=other", "--pin", "99999999", "--module", SOFTHSM,
                              "--subject", "CN=x", env=hsm.env)
        assert rc == 1 and "99999999" not in out + err, out + err
        rc, out, err = doctor("new", "pkcs11:token=fresh;object=other", "--pin", PIN, "--module", SOFTHSM,
                              "--subject", "not a dn", env=hsm.env)
        assert rc == 2 and "--subject" in err, err
        # A bad request changes nothing in the token: the label is still free.
        rc, out, err = doctor("list", "--module", SOFTHSM, "--pin", PIN, env=hsm.env)
        assert rc == 0 and "object=other" not in out, out + err
        rc, out, err = doctor("new", "pkcs11:token=fresh;object=other", "--pin", PIN, "--module", SOFTHSM,
                              "--subject", "CN=other", env=hsm.env)
        assert rc == 0 and "-----BEGIN NEW CERTIFICATE REQUEST-----" in out and "object=other" in err, out + err
        # A wrong PIN is not offered again (list exits 1, the PIN not shown).
        rc, out, err = doctor("list", "--module", SOFTHSM, "--pin", "77777777", env=hsm.env)
        assert rc == 1 and "refused the PIN" in err and "77777777" not in out + err, out + err
    finally:
        hsm.remove()


def test_tpm_key():
    tpm = Swtpm()
    try:
        key, pub = tpm.genkey("doctor")
        rc, out, err = doctor("check", key, "--tcti", tpm.tcti)
        assert rc == 0, out + err
        assert "backend tpm2, signed by tpm2" in out and "ECDSA-SECP256R1-SHA256" in out, out
        rc, out, err = doctor("speed", key, "--tcti", tpm.tcti, "--seconds", "1")
        assert rc == 0 and "signatures/s, 0 failed" in out, out + err
    finally:
        tpm.remove()


@pytest.mark.parametrize("key_type,pk,auth", [("ecdsa-p256", "EC", None), ("rsa2048", "RSA", "tpm-new-auth-5")])
def test_new_tpm_key_and_its_request(pki, tmp_path, key_type, pk, auth):
    """new with --tcti makes the key inside the TPM under the standard SRK
    and writes its TSS2 file: tpm2-openssl reads the same public key from
    it, the request is signed by the TPM, and the certificate a CA issues
    from it checks with the new key file. An existing file is never
    replaced; without --tcti nothing is made."""
    tpm = Swtpm()
    try:
        key = tmp_path / f"new-{key_type}.tss2.pem"
        csr = tmp_path / f"new-{key_type}.csr"
        pin = ["--pin", auth] if auth else []
        rc, out, err = doctor("new", key, "--tcti", tpm.tcti, "--type", key_type, *pin,
                              "--subject", "CN=tpm.example.test", "--dns", "tpm.example.test", "--csr", csr)
        assert rc == 0, out + err
        assert f"key: {key}" in out and "only this TPM can use it" in out, out
        assert key.read_text().startswith("-----BEGIN TSS2 PRIVATE KEY-----"), key.read_text()
        assert (key.stat().st_mode & 0o777) == 0o600
        if auth:
            assert auth not in out + err
        info = subprocess.run(["certtool", "--crq-info", "--infile", str(csr)], capture_output=True, text=True)
        assert info.returncode == 0 and "Self signature: verified" in info.stdout, info.stdout + info.stderr
        assert "tpm.example.test" in info.stdout, info.stdout
        # tpm2-openssl loads the file: the same public key as the request's.
        env = {**os.environ, "TPM2OPENSSL_TCTI": tpm.tcti}
        passin = ["-passin", f"pass:{auth}"] if auth else []
        theirs = subprocess.run(["openssl", "pkey", "-provider", "tpm2", "-provider", "default", "-in", str(key),
                                 *passin, "-pubout"], capture_output=True, text=True, env=env)
        assert theirs.returncode == 0, theirs.stderr
        ours = subprocess.run(["openssl", "req", "-in", str(csr), "-pubkey", "-noout"], capture_output=True, text=True)
        assert ours.returncode == 0 and ours.stdout == theirs.stdout, (ours.stdout, theirs.stdout)
        pub = tmp_path / "pub.pem"
        pub.write_text(ours.stdout)
        chain = pki.certify(f"doctor-tpm-new-{key_type}", pubkey=pub, cn="tpm.example.test")
        rc, out, err = doctor("check", key, "--tcti", tpm.tcti, *pin, "--cert", chain)
        assert rc == 0 and "the key matches the certificate" in out and f"{pk}" in out, out + err
        # Never over an existing file; a TPM key needs --tcti.
        before = key.read_text()
        rc, out, err = doctor("new", key, "--tcti", tpm.tcti, "--subject", "CN=x")
        assert rc == 1 and "never replaces a key file" in err and key.read_text() == before, out + err
        rc, out, err = doctor("new", tmp_path / "other.pem", "--subject", "CN=x")
        assert rc == 2 and "--tcti" in err and not (tmp_path / "other.pem").exists(), out + err
        # A TPM that refuses (a wrong owner authorization) leaves no file,
        # not even the temporary one; last, as the refusal counts against
        # this TPM's dictionary-attack limit.
        before = sorted(p.name for p in tmp_path.iterdir())
        rc, out, err = doctor("new", tmp_path / "refused.pem", "--tcti", tpm.tcti, "--srk-pin", "not-the-owner",
                              "--subject", "CN=x")
        assert rc == 1 and "owner hierarchy authorization" in err and "not-the-owner" not in out + err, out + err
        assert sorted(p.name for p in tmp_path.iterdir()) == before
    finally:
        tpm.remove()


def test_a_pin_on_the_command_line_leaves_argv(pki):
    """--pin is wiped from /proc/PID/cmdline once read (other users can read
    it there); a value given where an option was expected is not echoed."""
    import time
    _, key = pki.identity("doctor-argv", "p256")
    p = subprocess.Popen([doctor_path(), "speed", str(key), "--pin", "s3cret-pin-9", "--seconds", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        cmdline = Path(f"/proc/{p.pid}/cmdline").read_bytes()
        assert b"s3cret-pin-9" not in cmdline and b"--pin" in cmdline, cmdline
    finally:
        p.communicate(timeout=30)
    rc, out, err = doctor("check", key, "--cert", "--pin", "s3cret-pin-9")
    assert rc == 2 and "s3cret-pin-9" not in out + err, err


def test_bad_command_lines():
    for args in ([], ["check"], ["check", "--pin", "1"], ["repair", "key.pem"], ["check", "key.pem", "--threads"],
                 ["speed", "key.pem", "--threads", "0"], ["check", "key.pem", "--rsa-signer", "fast"],
                 ["check", "key.pem", "--pin", "1", "--pin-source", "env:X"], ["speed", "key.pem", "--threads", "1.5"],
                 ["check", "key.pem", "stray"]):
        rc, out, err = doctor(*args)
        assert rc == 2 and "usage: gnutls-keystore" in err, (args, err)
    rc, out, err = doctor("check", "/nonexistent/key.pem")
    assert rc == 1 and "/nonexistent/key.pem" in err, err


def check_config(h):
    """gnutls-keystore check-config on a test Apache's configuration."""
    from harness.httpd import APACHE
    return doctor("check-config", "--httpd", APACHE, "--", "-d", h.root, "-f", h.conf, env=h.env)


def test_check_config_reports_every_tls_virtual_host(pki):
    """The module itself loads every key of a whole configuration (Apache's
    configtest with -D GNUTLS_KEY_REPORT) and says what it loaded."""
    from harness.httpd import Httpd, vhost
    from harness.ports import free_ports
    ec_chain, ec_key = pki.identity("doctor-config-ec", "p256", cn="ec.test")
    rsa_chain, rsa_key = pki.identity("doctor-config-rsa", "rsa2048", cn="rsa.test")
    h = Httpd()
    try:
        ports = free_ports(2)
        h.write_config(vhost(ports[0], ec_chain, ec_key, name="ec.test") + "\n" +
                       vhost(ports[1], rsa_chain, rsa_key, name="rsa.test"), ports)
        rc, out, err = check_config(h)
        text = out + err
        assert rc == 0, text
        lines = {name: [line for line in text.splitlines() if "MGS01007" in line and f"virtual host {name}" in line]
                 for name in ("ec.test", "rsa.test")}
        assert all(len(found) == 1 for found in lines.values()), text
        ec, rsa = lines["ec.test"][0], lines["rsa.test"][0]
        assert f"key {ec_key} (file, EC/ECDSA 256 bits, signed by gnutls; schemes ECDSA-SECP256R1-SHA256" in ec, text
        assert "certificate CN=ec.test" in ec and f"chain of 2 from {ec_chain}" in ec, text
        assert f"key {rsa_key} (file, RSA 2048 bits, signed by libcrypto;" in rsa, text
        assert "RSA-PSS-RSAE-SHA256" in rsa, text
        assert "MGS01008" not in text, text
    finally:
        h.remove()


def test_check_config_fails_with_the_modules_message(pki):
    from harness.httpd import Httpd, vhost
    from harness.ports import free_ports
    _, key = pki.identity("doctor-config-mismatch-a", "p256")
    other_chain, _ = pki.identity("doctor-config-mismatch-b", "p256")
    h = Httpd()
    try:
        port = free_ports(1)[0]
        h.write_config(vhost(port, other_chain, key), [port])
        rc, out, err = check_config(h)
        assert rc == 1, out + err
        assert "MGS01003" in out + err and f"the private key {key} does not match the certificate" in out + err
    finally:
        h.remove()


def test_check_config_fails_for_an_expired_certificate(pki, tmp_path):
    """Apache itself starts with an expired certificate (as mod_gnutls
    does); the report says so and check-config exits 1."""
    import subprocess as sp
    from harness.httpd import Httpd, vhost
    from harness.ports import free_ports
    key = pki.key("doctor-config-expired", "p256")
    tmpl = tmp_path / "expired.tmpl"
    tmpl.write_text('cn = localhost\ndns_name = localhost\nactivation_date = "2020-01-01 00:00:00"\n'
                    'expiration_date = "2021-01-01 00:00:00"\nsigning_key\ntls_www_server\n')
    cert = tmp_path / "expired.pem"
    sp.run(["certtool", "--generate-certificate", "--load-privkey", key, "--load-ca-privkey", pki.ca_key,
            "--load-ca-certificate", pki.ca_cert, "--template", tmpl, "--outfile", cert],
           check=True, capture_output=True)
    chain = tmp_path / "expired-chain.pem"
    chain.write_text(cert.read_text() + pki.ca_cert.read_text())
    h = Httpd()
    try:
        port = free_ports(1)[0]
        h.write_config(vhost(port, chain, key), [port])
        assert h.configtest()[0] == 0
        rc, out, err = check_config(h)
        assert rc == 1, out + err
        assert "MGS01008" in out + err and "certificate 1 expired on 2021-01-01" in out + err, out + err
    finally:
        h.remove()
