#include "tools/gnutls-keystore/list.h"

#include "keystore/error.h"
#include "keystore/gnutls_handles.h"
#include "pkcs11/providers.h"
#include "tpm/tpm_context.h"
#include "tools/gnutls-keystore/key_opening.h"
#include "tools/gnutls-keystore/token_login.h"

#include <gnutls/pkcs11.h>
#include <tss2/tss2_esys.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace mgs::tool {

namespace {

std::string token_info(const char* url, gnutls_pkcs11_token_info_t what)
{
    char buf[256] = "";
    size_t size = sizeof buf;
    if (gnutls_pkcs11_token_get_info(url, what, buf, &size) < 0)
        return "";
    std::string s(buf);
    while (!s.empty() && s.back() == ' ')
        s.pop_back();
    return s;
}

// False when the token would not list them (a wrong PIN, not retried).
bool list_objects(const char* token_url, unsigned flags, const char* heading)
{
    gnutls_pkcs11_obj_t* objs = nullptr;
    unsigned n = 0;
    int rc = gnutls_pkcs11_obj_list_import_url4(&objs, &n, token_url, flags);
    if (rc < 0) {
        std::fprintf(stderr, "gnutls-keystore: %s: %s: cannot list (%s)\n", token_url, heading,
                     rc == GNUTLS_E_PKCS11_PIN_ERROR ? "the token refused the PIN; it is not retried"
                                                     : gnutls_strerror(rc));
        return false;
    }
    for (unsigned i = 0; i < n; ++i) {
        char* url = nullptr;
        if (gnutls_pkcs11_obj_export_url(objs[i], GNUTLS_PKCS11_URL_GENERIC, &url) >= 0) {
            const char* type = gnutls_pkcs11_type_get_name(gnutls_pkcs11_obj_get_type(objs[i]));
            std::printf("    %-12s %s\n", type ? type : "object", url);
            gnutls_free(url);
        }
        gnutls_pkcs11_obj_deinit(objs[i]);
    }
    gnutls_free(objs);
    if (n == 0)
        std::printf("    %s: none\n", heading);
    return true;
}

int list_tokens(const Options& options, const Secret& pin)
{
    int status = 0;
    for (unsigned seq = 0;; ++seq) {
        char* url = nullptr;
        int rc = gnutls_pkcs11_token_get_url(seq, GNUTLS_PKCS11_URL_GENERIC, &url);
        if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
            if (seq == 0)
                std::printf("no PKCS#11 token (modules: %s)\n",
                            options.modules.empty() ? "p11-kit's configured ones" : "--module");
            return status;
        }
        if (rc < 0) {
            std::fprintf(stderr, "gnutls-keystore: PKCS#11: %s\n", gnutls_strerror(rc));
            return 1;
        }
        unsigned tflags = 0;
        gnutls_pkcs11_token_get_flags(url, &tflags);
        std::printf("token %s\n  label \"%s\", %s %s, serial %s%s\n", url,
                    token_info(url, GNUTLS_PKCS11_TOKEN_LABEL).c_str(),
                    token_info(url, GNUTLS_PKCS11_TOKEN_MANUFACTURER).c_str(),
                    token_info(url, GNUTLS_PKCS11_TOKEN_MODEL).c_str(),
                    token_info(url, GNUTLS_PKCS11_TOKEN_SERIAL).c_str(),
                    (tflags & GNUTLS_PKCS11_TOKEN_HW) ? ", hardware" : "");
        if (!list_objects(url, GNUTLS_PKCS11_OBJ_FLAG_CRT, "certificates"))
            status = 1;
        if (!pin.empty() && !list_objects(url, GNUTLS_PKCS11_OBJ_FLAG_PRIVKEY | GNUTLS_PKCS11_OBJ_FLAG_LOGIN,
                                          "private keys"))
            status = 1;
        else
            std::printf("    (private keys: give --pin or --pin-source to log in)\n");
        gnutls_free(url);
    }
}

int list_tpm_handles(const std::string& tcti)
{
    try {
        tpm::TpmContext tpm(tcti);
        TPMS_CAPABILITY_DATA* cap = nullptr;
        TPMI_YES_NO more = TPM2_NO;
        TSS2_RC rc = Esys_GetCapability(tpm.esys(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES,
                                        TPM2_PERSISTENT_FIRST, TPM2_MAX_CAP_HANDLES, &more, &cap);
        if (rc != TSS2_RC_SUCCESS) {
            std::fprintf(stderr, "gnutls-keystore: GnuTLSTPMTCTI %s: %s\n", tcti.c_str(), tpm::rc_text(rc).c_str());
            return 1;
        }
        std::printf("TPM %s: %u persistent handle%s\n", tcti.c_str(), cap->data.handles.count,
                    cap->data.handles.count == 1 ? "" : "s");
        for (UINT32 i = 0; i < cap->data.handles.count; ++i) {
            const TPM2_HANDLE h = cap->data.handles.handle[i];
            std::printf("  handle:0x%08x%s\n", h,
                        h == 0x81000001 ? "  (the standard RSA SRK)" : h == 0x81000002 ? "  (the standard ECC SRK)" : "");
        }
        Esys_Free(cap);
        return 0;
    } catch (const Error& e) {
        std::fprintf(stderr, "gnutls-keystore: GnuTLSTPMTCTI: %s\n", e.what());
        return 1;
    }
}

} // namespace

int run_list(const Options& options)
{
    KeyOpener opener(options);
    Secret pin;
    try {
        pin = opener.key_options().pin;
        opener.load_modules();
    } catch (const Error& e) {
        std::fprintf(stderr, "gnutls-keystore: %s\n", e.what());
        return 1;
    }
    int status;
    {
        TokenLogin login(pin);
        status = list_tokens(options, pin);
    }
    if (!options.tcti.empty())
        status |= list_tpm_handles(options.tcti);
    else
        std::printf("TPM: not queried (give --tcti, e.g. device:/dev/tpmrm0)\n");
    return status;
}

} // namespace mgs::tool
