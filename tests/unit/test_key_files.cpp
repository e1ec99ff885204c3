// Key-file decoding without copies (keystore/private_pem.h) and the TSS2
// key file writer (tpm/key_creation.h), read back by the module's parser.
#include "keystore/private_pem.h"
#include "tpm/key_creation.h"
#include "tpm/key_file.h"

#include <gnutls/gnutls.h>
#include <gtest/gtest.h>

#include <string>

namespace mgs::test {
namespace {

std::span<const std::uint8_t> bytes(const std::string& s)
{
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string pem(const std::string& label, const std::string& der)
{
    gnutls_datum_t in{reinterpret_cast<unsigned char*>(const_cast<char*>(der.data())),
                      static_cast<unsigned>(der.size())};
    gnutls_datum_t out{};
    EXPECT_EQ(gnutls_pem_base64_encode2(label.c_str(), &in, &out), 0);
    std::string text(reinterpret_cast<const char*>(out.data), out.size);
    gnutls_free(out.data);
    return text;
}

TEST(PrivatePem, DecodesThePrivateKeyBlockAsGnuTlsWould)
{
    static const char raw[] = "\x30\x03\x02\x01\x00 and more bytes to span several base64 lines, "
                              "at least sixty-four characters of them";
    const std::string der(raw, sizeof raw - 1); // with its NUL byte inside
    auto got = private_key_pem_to_der(bytes(pem("PRIVATE KEY", der)));
    ASSERT_TRUE(got);
    EXPECT_EQ(std::string(got->begin(), got->end()), der);
    // Any *PRIVATE KEY label (PKCS#1, SEC1), after other blocks.
    got = private_key_pem_to_der(bytes(pem("EC PARAMETERS", "\x06\x01\x01") + pem("EC PRIVATE KEY", der)));
    ASSERT_TRUE(got);
    EXPECT_EQ(std::string(got->begin(), got->end()), der);
}

TEST(PrivatePem, LeavesEverythingElseToGnuTls)
{
    EXPECT_FALSE(private_key_pem_to_der(bytes(pem("CERTIFICATE", "abc"))));
    // OpenSSL's encrypted PEM has header lines: GnuTLS decrypts it.
    EXPECT_FALSE(private_key_pem_to_der(bytes(
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n"
        "-----END RSA PRIVATE KEY-----\n")));
    EXPECT_FALSE(private_key_pem_to_der(bytes("-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n")));
    EXPECT_FALSE(private_key_pem_to_der(bytes("-----BEGIN PRIVATE KEY-----\nAAAA\n")));       // no end
    EXPECT_FALSE(private_key_pem_to_der(bytes("-----BEGIN PRIVATE KEY-----\nA=A=\n-----END PRIVATE KEY-----\n")));
    EXPECT_FALSE(private_key_pem_to_der(bytes("")));
}

TEST(Tss2KeyWriter, WritesWhatTheParserReads)
{
    const std::string pub("\x00\x04" "abcd", 6), priv("\x00\x03" "xyz", 5);
    for (bool empty_auth : {true, false}) {
        std::string text = tpm::tss2_key_pem(pub, priv, empty_auth, 0x40000001);
        ASSERT_TRUE(tpm::is_tss2_pem(bytes(text))) << text;
        tpm::Tss2KeyFile f = tpm::parse_tss2_key(bytes(text), "written");
        EXPECT_EQ(f.type_oid, tpm::loadable_key_oid);
        EXPECT_EQ(f.parent, 0x40000001u);
        EXPECT_EQ(f.empty_auth.value_or(false), empty_auth);
        EXPECT_EQ(std::string(f.public_area.begin(), f.public_area.end()), pub);
        EXPECT_EQ(std::string(f.private_area.begin(), f.private_area.end()), priv);
    }
    // Long parts (an RSA key's) take two-byte DER lengths.
    const std::string long_pub(300, 'p'), long_priv(200, 'q');
    tpm::Tss2KeyFile f = tpm::parse_tss2_key(bytes(tpm::tss2_key_pem(long_pub, long_priv, true, 0x81000001)), "long");
    EXPECT_EQ(f.parent, 0x81000001u);
    EXPECT_EQ(f.public_area.size(), 300u);
    EXPECT_EQ(f.private_area.size(), 200u);
}

} // namespace
} // namespace mgs::test
