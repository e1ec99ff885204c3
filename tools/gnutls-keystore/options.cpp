#include "tools/gnutls-keystore/options.h"

#include <cstdlib>
#include <cstring>

namespace mgs::tool {

const char* const usage =
    "usage: gnutls-keystore check KEY [--cert CHAIN] [key options]\n"
    "       gnutls-keystore speed KEY [--threads N] [--seconds S] [key options]\n"
    "       gnutls-keystore list [--pin PIN | --pin-source SRC] [--module SO]... [--tcti TCTI]\n"
    "       gnutls-keystore new 'pkcs11:token=T;object=LABEL' | NEW-TSS2-FILE --subject DN [--dns NAME]...\n"
    "                       [--type ecdsa-p256|ecdsa-p384|rsa2048|rsa3072] [--csr FILE] [key options]\n"
    "       gnutls-keystore check-config [--httpd PROGRAM] [-- APACHE ARGUMENTS]\n"
    "\n"
    "KEY is what GnuTLSKeyFile takes: a key file, a pkcs11: URL, a TPM 2.0 key\n"
    "file (TSS2 PRIVATE KEY) or handle:0x81XXXXXX. The key options are the\n"
    "directives that decide how mod_gnutls opens it:\n"
    "  --pin PIN            GnuTLSPIN (token PIN, key passphrase or TPM key auth);\n"
    "                       visible to other users until read: prefer --pin-source\n"
    "  --pin-source SRC     GnuTLSPINSource: file:PATH, exec:PROGRAM or env:VARIABLE\n"
    "  --srk-pin PIN        GnuTLSSRKPIN; --srk-pin-source SRC: GnuTLSSRKPINSource\n"
    "  --module SO          GnuTLSPKCS11Module (may repeat; default: p11-kit's modules)\n"
    "  --tcti TCTI          GnuTLSTPMTCTI (e.g. device:/dev/tpmrm0, swtpm:port=2321)\n"
    "  --rsa-signer WHO     GnuTLSRSASigner: auto, libcrypto or gnutls\n"
    "check loads the key as mod_gnutls does, signs with every TLS signature\n"
    "scheme it offers and verifies each signature, and with --cert (what\n"
    "GnuTLSCertificateFile takes) checks that the chain is in order and matches\n"
    "the key. It exits 1 with the message mod_gnutls would log when any of\n"
    "that fails, 2 for a bad command line.\n"
    "speed signs in a loop for S seconds (default 3) with N threads (default\n"
    "1) and prints the signatures per second.\n"
    "list prints the PKCS#11 tokens mod_gnutls would see and their objects as\n"
    "pkcs11: URLs (private keys when a PIN is given), and with --tcti the TPM's\n"
    "persistent handles.\n"
    "new makes a key inside the token (not exportable), under a label no key\n"
    "has yet, or inside the TPM (--tcti; under the owner hierarchy's standard\n"
    "SRK, written to NEW-TSS2-FILE, which must not exist; --pin becomes the\n"
    "key's authorization), and a certificate request for it (PEM, to FILE or\n"
    "standard output) signed by the new key; it prints the key's reference.\n"
    "check-config runs PROGRAM (default apache2ctl) -t -D GNUTLS_KEY_REPORT with\n"
    "the APACHE ARGUMENTS (e.g. -f /etc/apache2/apache2.conf): the module loads\n"
    "every key of the configuration as it would to serve, and reports each TLS\n"
    "virtual host's key, certificate, chain order and expiry; it exits 1 when\n"
    "the configuration does not load or a certificate has expired.\n";

namespace {

double number(const std::string& flag, const char* v)
{
    char* end = nullptr;
    double d = std::strtod(v, &end);
    if (!*v || *end || d <= 0)
        throw UsageError(flag + " needs a positive number, not '" + v + "'");
    return d;
}

} // namespace

Options parse_options(int argc, char** argv)
{
    if (argc < 2)
        throw UsageError("a command is needed");
    Options o;
    o.command = argv[1];
    if (o.command != "check" && o.command != "speed" && o.command != "list" && o.command != "new" &&
        o.command != "check-config")
        throw UsageError("unknown command '" + o.command + "' (check, speed, list, new or check-config)");
    if (o.command == "check-config") {
        for (int i = 2; i < argc; ++i) {
            std::string flag = argv[i];
            if (flag == "--") {
                o.httpd_args.assign(argv + i + 1, argv + argc);
                break;
            }
            if (flag != "--httpd" || i + 1 >= argc)
                throw UsageError("check-config takes --httpd PROGRAM and, after --, Apache's own arguments");
            o.httpd = argv[++i];
        }
        return o;
    }
    int first_option = 2;
    if (o.command != "list") {
        if (argc < 3 || std::strncmp(argv[2], "--", 2) == 0)
            throw UsageError(o.command + " needs a key");
        o.key = argv[2];
        first_option = 3;
    }
    for (int i = first_option; i < argc; ++i) {
        std::string flag = argv[i];
        // Whatever is not an option may be a secret given in the wrong place:
        // it is not repeated in the message.
        if (!flag.starts_with("--"))
            throw UsageError("an argument where an option (--name) was expected (not repeated here)");
        if (i + 1 >= argc)
            throw UsageError(flag + " needs a value");
        char* v = argv[++i];
        if (flag == "--cert")
            o.cert = v;
        else if (flag == "--pin") {
            o.pin = Secret(v);
            // Out of /proc/PID/cmdline from now on (ps showed it until here:
            // prefer --pin-source).
            std::memset(v, 0, std::strlen(v));
        }
        else if (flag == "--pin-source")
            o.pin_source = v;
        else if (flag == "--srk-pin") {
            o.srk_pin = Secret(v);
            std::memset(v, 0, std::strlen(v));
        }
        else if (flag == "--srk-pin-source")
            o.srk_pin_source = v;
        else if (flag == "--module")
            o.modules.push_back(v);
        else if (flag == "--subject")
            o.subject = v;
        else if (flag == "--dns")
            o.dns_names.push_back(v);
        else if (flag == "--type")
            o.key_type = v;
        else if (flag == "--csr")
            o.csr_out = v;
        else if (flag == "--tcti")
            o.tcti = v;
        else if (flag == "--rsa-signer") {
            if (!std::strcmp(v, "auto"))
                o.rsa = RsaEngine::automatic;
            else if (!std::strcmp(v, "libcrypto"))
                o.rsa = RsaEngine::libcrypto;
            else if (!std::strcmp(v, "gnutls"))
                o.rsa = RsaEngine::gnutls;
            else
                throw UsageError(std::string("--rsa-signer must be auto, libcrypto or gnutls, not '") + v + "'");
        } else if (flag == "--threads") {
            double n = number(flag, v);
            if (n != static_cast<double>(static_cast<long>(n)) || n > 1024)
                throw UsageError("--threads needs a whole number from 1 to 1024");
            o.threads = static_cast<int>(n);
        }
        else if (flag == "--seconds")
            o.seconds = number(flag, v);
        else
            throw UsageError("unknown option " + flag);
    }
    if (o.pin && o.pin_source)
        throw UsageError("--pin and --pin-source exclude each other (as GnuTLSPIN and GnuTLSPINSource do)");
    if (o.srk_pin && o.srk_pin_source)
        throw UsageError("--srk-pin and --srk-pin-source exclude each other");
    return o;
}

} // namespace mgs::tool
