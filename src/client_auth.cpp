#include "src/client_auth.h"

#include "keystore/error.h"
#include "keystore/gnutls_handles.h"

namespace mgs {

ClientCertResult verify_client_certificate(gnutls_session_t session, const std::string& purpose_oid)
{
    unsigned count = 0;
    if (!gnutls_certificate_get_peers(session, &count) || count == 0)
        return {};
    gnutls_typed_vdata_st data{};
    data.type = GNUTLS_DT_KEY_PURPOSE_OID;
    data.data = reinterpret_cast<unsigned char*>(const_cast<char*>(purpose_oid.c_str()));
    unsigned status = 0;
    if (int rc = gnutls_certificate_verify_peers(session, &data, purpose_oid.empty() ? 0 : 1, &status); rc < 0)
        return {ClientCertStatus::failed, gnutls_error_text(rc)};
    if (status == 0)
        return {ClientCertStatus::success, {}};
    return {ClientCertStatus::failed, verification_status_text(status)};
}

std::string verification_status_text(unsigned status)
{
    GnutlsDatum text;
    if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text.d, 0) < 0)
        return "certificate not valid";
    return text.text();
}

const char* client_verify_name(ClientCertStatus status)
{
    switch (status) {
    case ClientCertStatus::success: return "SUCCESS";
    case ClientCertStatus::failed: return "FAILED";
    default: return "NONE";
    }
}

} // namespace mgs
