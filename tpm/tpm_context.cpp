#include "tpm/tpm_context.h"

#include <mutex>

#include "keystore/error.h"

#include <tss2/tss2_rc.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace mgs::tpm {

std::string rc_text(TSS2_RC rc)
{
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%x", rc);
    return std::string(Tss2_RC_Decode(rc)) + " (" + hex + ")";
}

bool is_link_failure(TSS2_RC rc)
{
    TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
    TSS2_RC base = rc & 0xffff;
    if (layer == TSS2_TCTI_RC_LAYER)
        return true;
    if (layer == TSS2_SYS_RC_LAYER || layer == TSS2_ESAPI_RC_LAYER)
        return base == TSS2_BASE_RC_IO_ERROR || base == TSS2_BASE_RC_NO_CONNECTION ||
               base == TSS2_BASE_RC_TRY_AGAIN || base == TSS2_BASE_RC_MALFORMED_RESPONSE ||
               base == TSS2_BASE_RC_INSUFFICIENT_RESPONSE || base == TSS2_BASE_RC_GENERAL_FAILURE;
    return false;
}

bool is_object_gone(TSS2_RC rc)
{
    if ((rc & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER)
        return false;
    TSS2_RC code = rc & 0xfff;
    return code >= TPM2_RC_REFERENCE_H0 && code <= TPM2_RC_REFERENCE_H0 + 6;
}

namespace {
// tpm2-tss logs its own errors to stderr (Apache's error log) at WARNING;
// every failure is reported by this backend with its decoded code instead.
// An administrator's TSS2_LOG still wins. Set before the first TCTI is
// loaded (tpm2-tss reads it then), in the processes that talk to the TPM.
void quiet_tss2_logging()
{
    static std::once_flag once;
    std::call_once(once, [] { ::setenv("TSS2_LOG", "all+none", 0); });
}
} // namespace

TpmContext::TpmContext(const std::string& tcti, int answer_timeout_ms)
    : where_(tcti.empty() ? "the default TPM (tpm2-tss search: /dev/tpmrm0, /dev/tpm0, tabrmd, mssim)" : tcti)
{
    quiet_tss2_logging();
    if (TSS2_RC rc = Tss2_TctiLdr_Initialize(tcti.empty() ? nullptr : tcti.c_str(), &tcti_); rc != TSS2_RC_SUCCESS)
        throw Error("no TPM reachable at " + where_ + ": " + rc_text(rc));
    if (TSS2_RC rc = Esys_Initialize(&esys_, tcti_, nullptr); rc != TSS2_RC_SUCCESS) {
        Tss2_TctiLdr_Finalize(&tcti_);
        throw Error("no TPM reachable at " + where_ + ": " + rc_text(rc));
    }
    // The first command, with a deadline: a TPM that accepts the connection
    // but never answers (swtpm busy with another client) must not hang us.
    Esys_SetTimeout(esys_, 100);
    TSS2_RC rc = Esys_Startup_Async(esys_, TPM2_SU_CLEAR);
    if (rc == TSS2_RC_SUCCESS) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(answer_timeout_ms);
        do {
            rc = Esys_Startup_Finish(esys_);
        } while ((rc & 0xffff) == TSS2_BASE_RC_TRY_AGAIN && std::chrono::steady_clock::now() < deadline);
    }
    Esys_SetTimeout(esys_, TSS2_TCTI_TIMEOUT_BLOCK);
    // TPM2_RC_INITIALIZE: already started, which is the normal case.
    if (rc != TSS2_RC_SUCCESS && (rc & ~TPM2_RC_N_MASK) != TPM2_RC_INITIALIZE && rc != TPM2_RC_INITIALIZE) {
        std::string why = (rc & 0xffff) == TSS2_BASE_RC_TRY_AGAIN
                              ? "it did not answer within " + std::to_string(answer_timeout_ms / 1000) +
                                    " s (swtpm serves one client at a time: is another program connected?)"
                              : rc_text(rc);
        Esys_Finalize(&esys_);
        Tss2_TctiLdr_Finalize(&tcti_);
        throw Error("no TPM reachable at " + where_ + ": " + why);
    }
    flush_leftovers();
}

// Transient objects left by a program that ended without flushing them
// (only a TPM without a resource manager keeps them: with one, this list is
// our own and empty). swtpm has three object slots.
void TpmContext::flush_leftovers()
{
    TPMS_CAPABILITY_DATA* cap = nullptr;
    TPMI_YES_NO more = TPM2_NO;
    if (Esys_GetCapability(esys_, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES, TPM2_TRANSIENT_FIRST,
                           TPM2_MAX_CAP_HANDLES, &more, &cap) != TSS2_RC_SUCCESS)
        return;
    for (UINT32 i = 0; i < cap->data.handles.count; ++i) {
        ESYS_TR tr = ESYS_TR_NONE;
        if (Esys_TR_FromTPMPublic(esys_, cap->data.handles.handle[i], ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                  &tr) == TSS2_RC_SUCCESS)
            Esys_FlushContext(esys_, tr);
    }
    Esys_Free(cap);
}

TpmContext::~TpmContext()
{
    Esys_Finalize(&esys_);
    Tss2_TctiLdr_Finalize(&tcti_);
}

} // namespace mgs::tpm
