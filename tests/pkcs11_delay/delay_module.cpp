// A PKCS#11 module that stands for an HSM across a network: it forwards
// every call to a real module (SoftHSM2 by default; MGS_P11_DELAY_TARGET
// names another) and sleeps MGS_P11_DELAY_MS milliseconds (default 5) in each
// C_Sign. With one session and one lock per key, such an HSM caps signing
// at 1000/delay per second; the session pool is measured against that.
// With MGS_P11_DELAY_STATS=PATH, each process writes the largest number of
// signatures it had in flight at once to PATH.<pid> (tests read it: more
// than one means keys sign in parallel). MGS_P11_HIDE_MECHANISMS=0xd,...
// makes the token lack those mechanisms (e.g. CKM_RSA_PKCS_PSS, as older
// HSMs and smart cards do).
#include <p11-kit/pkcs11.h>

#include <dlfcn.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <string>
#include <thread>
#include <vector>

namespace {

CK_FUNCTION_LIST* target = nullptr;
CK_FUNCTION_LIST forwarding;
int delay_ms = 5;
std::atomic<int> in_flight{0};
std::atomic<int> most_in_flight{0};

void wait_like_a_network_hsm()
{
    int now = ++in_flight;
    int seen = most_in_flight.load();
    while (now > seen && !most_in_flight.compare_exchange_weak(seen, now)) {
    }
    if (now > seen)
        if (const char* stats = std::getenv("MGS_P11_DELAY_STATS"))
            if (FILE* f = std::fopen((std::string(stats) + "." + std::to_string(::getpid())).c_str(), "w")) {
                std::fprintf(f, "%d\n", now);
                std::fclose(f);
            }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    --in_flight;
}

CK_RV delayed_sign(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR signature,
                   CK_ULONG_PTR signature_len)
{
    // Only a real signature waits, not the size query (signature == NULL).
    if (signature)
        wait_like_a_network_hsm();
    return target->C_Sign(session, data, data_len, signature, signature_len);
}

CK_RV delayed_sign_final(CK_SESSION_HANDLE session, CK_BYTE_PTR signature, CK_ULONG_PTR signature_len)
{
    if (signature)
        wait_like_a_network_hsm();
    return target->C_SignFinal(session, signature, signature_len);
}

std::vector<CK_MECHANISM_TYPE> hidden;

bool is_hidden(CK_MECHANISM_TYPE m) { return std::find(hidden.begin(), hidden.end(), m) != hidden.end(); }

CK_RV filtered_mechanism_list(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
    CK_ULONG n = 0;
    if (CK_RV rv = target->C_GetMechanismList(slot, nullptr, &n); rv != CKR_OK)
        return rv;
    std::vector<CK_MECHANISM_TYPE> all(n);
    if (CK_RV rv = target->C_GetMechanismList(slot, all.data(), &n); rv != CKR_OK)
        return rv;
    all.resize(n);
    std::erase_if(all, is_hidden);
    if (list) {
        if (*count < all.size()) {
            *count = all.size();
            return CKR_BUFFER_TOO_SMALL;
        }
        std::copy(all.begin(), all.end(), list);
    }
    *count = all.size();
    return CKR_OK;
}

CK_RV filtered_mechanism_info(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info)
{
    return is_hidden(type) ? CKR_MECHANISM_INVALID : target->C_GetMechanismInfo(slot, type, info);
}

CK_RV filtered_sign_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key)
{
    return mechanism && is_hidden(mechanism->mechanism) ? CKR_MECHANISM_INVALID
                                                         : target->C_SignInit(session, mechanism, key);
}

} // namespace

extern "C" __attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
    if (!list)
        return CKR_ARGUMENTS_BAD;
    if (!target) {
        const char* path = std::getenv("MGS_P11_DELAY_TARGET");
        void* lib = dlopen(path ? path : "/usr/lib/softhsm/libsofthsm2.so", RTLD_NOW | RTLD_LOCAL);
        if (!lib)
            return CKR_GENERAL_ERROR;
        auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(lib, "C_GetFunctionList"));
        if (!get || get(&target) != CKR_OK)
            return CKR_GENERAL_ERROR;
        if (const char* d = std::getenv("MGS_P11_DELAY_MS"))
            delay_ms = std::atoi(d);
        forwarding = *target;
        forwarding.C_Sign = delayed_sign;
        forwarding.C_SignFinal = delayed_sign_final;
        if (const char* h = std::getenv("MGS_P11_HIDE_MECHANISMS")) {
            std::string list = h;
            for (std::size_t at = 0; at < list.size();) {
                std::size_t end = list.find(',', at);
                if (end == std::string::npos)
                    end = list.size();
                hidden.push_back(std::strtoul(list.substr(at, end - at).c_str(), nullptr, 0));
                at = end + 1;
            }
            forwarding.C_GetMechanismList = filtered_mechanism_list;
            forwarding.C_GetMechanismInfo = filtered_mechanism_info;
            forwarding.C_SignInit = filtered_sign_init;
        }
    }
    *list = &forwarding;
    return CKR_OK;
}
