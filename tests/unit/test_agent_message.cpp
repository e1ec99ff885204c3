// The key agent's wire format (tpm/agent_message.h): answers and requests.
#include "tpm/agent_message.h"

#include "keystore/error.h"

#include <gtest/gtest.h>

#include <cstring>

namespace mgs::test {
namespace {

TEST(AgentMessage, RequestRoundTrip)
{
    Bytes input{1, 2, 3, 4, 5};
    SignRequest req{GNUTLS_SIGN_RSA_PSS_RSAE_SHA256, SignInput::digest, input, 7};
    Bytes msg = tpm::encode_request(3, req);
    EXPECT_EQ(msg.size(), 16u + input.size());
    auto got = tpm::decode_request(msg);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->key, 3u);
    EXPECT_EQ(got->request.scheme, GNUTLS_SIGN_RSA_PSS_RSAE_SHA256);
    EXPECT_EQ(got->request.kind, SignInput::digest);
    EXPECT_EQ(got->request.gnutls_flags, 7u);
    EXPECT_EQ(Bytes(got->request.input.begin(), got->request.input.end()), input);
}

TEST(AgentMessage, RequestWithEmptyInput)
{
    SignRequest req{GNUTLS_SIGN_ECDSA_SECP256R1_SHA256, SignInput::message, {}, 0};
    Bytes msg = tpm::encode_request(0, req);
    auto got = tpm::decode_request(msg);
    ASSERT_TRUE(got);
    EXPECT_TRUE(got->request.input.empty());
    EXPECT_EQ(got->request.kind, SignInput::message);
}

TEST(AgentMessage, ShortRequestIsMalformed)
{
    Bytes msg = tpm::encode_request(1, {GNUTLS_SIGN_RSA_SHA256, SignInput::message, {}, 0});
    for (std::size_t n = 0; n < 16; ++n)
        EXPECT_FALSE(tpm::decode_request({msg.data(), n})) << n;
    EXPECT_TRUE(tpm::decode_request(msg));
}

// Found by tests/fuzz/fuzz_agent_message: a scheme outside
// gnutls_sign_algorithm_t's range became an enum value (undefined
// behaviour, reported by UBSan where the agent read it).
TEST(AgentMessage, SchemeOrKindOutsideTheirEnumsIsMalformed)
{
    auto with = [](std::int32_t scheme, std::uint32_t kind) {
        Bytes msg = tpm::encode_request(0, {GNUTLS_SIGN_RSA_SHA256, SignInput::message, {}, 0});
        std::memcpy(msg.data() + 4, &scheme, 4);
        std::memcpy(msg.data() + 8, &kind, 4);
        return tpm::decode_request(msg);
    };
    EXPECT_TRUE(with(GNUTLS_SIGN_RSA_SHA256, 0));
    EXPECT_TRUE(with(GNUTLS_SIGN_MAX, 1));
    EXPECT_FALSE(with(GNUTLS_SIGN_UNKNOWN, 0));
    EXPECT_FALSE(with(-1, 0));
    EXPECT_FALSE(with(GNUTLS_SIGN_MAX + 1, 0));
    EXPECT_FALSE(with(static_cast<std::int32_t>(0x88888888u), 0));
    EXPECT_FALSE(with(GNUTLS_SIGN_RSA_SHA256, 2));
    EXPECT_FALSE(with(GNUTLS_SIGN_RSA_SHA256, 0xffffffffu));
}

TEST(AgentMessage, Answers)
{
    Bytes result{9, 8, 7};
    EXPECT_EQ(tpm::open_answer(tpm::ok_answer(result), "silent"), result);
    EXPECT_TRUE(tpm::open_answer(tpm::ok_answer({}), "silent").empty());
    try {
        tpm::open_answer(tpm::error_answer("no such TPM key"), "silent");
        FAIL();
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "no such TPM key");
    }
    try {
        tpm::open_answer({}, "the agent sent nothing");
        FAIL();
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "the agent sent nothing");
    }
    EXPECT_EQ(tpm::error_answer(std::string(5000, 'x')).size(), 4001u);
}

} // namespace
} // namespace mgs::test
