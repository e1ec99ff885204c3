#include "tpm/key_agent.h"

#include "keystore/child_process.h"
#include "keystore/hex.h"
#include "keystore/public_key.h"
#include "keystore/unique_fd.h"

#include "tpm/agent_connections.h"
#include "tpm/agent_message.h"
#include "tpm/tls_signing.h"

#include <gnutls/crypto.h>

#include <dirent.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <thread>

namespace mgs::tpm {

namespace {

constexpr std::size_t max_message = 16384;
constexpr int client_timeout_s = 5;
// How often the agent may try to reach a TPM that went away.
constexpr auto reconnect_interval = std::chrono::milliseconds(250);

sockaddr_un abstract_address(const std::string& name, socklen_t& len)
{
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    a.sun_path[0] = '\0';
    std::memcpy(a.sun_path + 1, name.data(), name.size());
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    return a;
}

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// A worker's socket calls, again when a signal interrupted them: prefork
// children get SIGUSR1 at every graceful restart, and a handshake then in
// flight must not fail for it. (Socket timeouts are never restarted by the
// kernel, whatever SA_RESTART says; each try may wait the full timeout.)
ssize_t send_message(int fd, const void* data, std::size_t size)
{
    ssize_t n;
    while ((n = ::send(fd, data, size, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
    }
    return n;
}

ssize_t receive_message(int fd, void* data, std::size_t size)
{
    ssize_t n;
    while ((n = ::recv(fd, data, size, 0)) < 0 && errno == EINTR) {
    }
    return n;
}

// The agent's view of one TPM (keys may name different TCTIs).
struct TpmLink {
    std::string tcti;
    std::vector<std::size_t> keys;
    std::unique_ptr<TpmContext> ctx;
    std::map<std::size_t, std::unique_ptr<LoadedKey>> loaded;
    std::chrono::steady_clock::time_point last_attempt{};
    bool up = true; // the parent just used it to check every key
    std::string failure;

    void drop()
    {
        loaded.clear(); // before the context they live in
        ctx.reset();
    }
};

// One key the TPM answered for but would not load (not a link failure):
// retried like an outage, at most every reconnect_interval.
struct KeyFailure {
    std::string why;
    std::chrono::steady_clock::time_point at;
};

class AgentLoop {
public:
    AgentLoop(const std::vector<KeySpec>& keys, const AgentLog& log) : keys_(keys), log_(log)
    {
        for (std::size_t i = 0; i < keys.size(); ++i) {
            auto it = std::find_if(links_.begin(), links_.end(), [&](auto& l) { return l->tcti == keys[i].tcti; });
            if (it == links_.end()) {
                links_.push_back(std::make_unique<TpmLink>());
                links_.back()->tcti = keys[i].tcti;
                it = links_.end() - 1;
            }
            (*it)->keys.push_back(i);
            link_of_.push_back(it->get());
        }
        for (auto& l : links_) {
            try {
                connect(*l);
            } catch (const Error& e) {
                mark_down(*l, e.what());
            }
        }
    }

    Bytes sign(std::size_t index, const SignRequest& req)
    {
        if (index >= keys_.size())
            throw Error("no such TPM key");
        TpmLink& link = *link_of_[index];
        for (int attempt = 0; attempt < 2; ++attempt) {
            try {
                if (!link.ctx) {
                    if (!link.up && std::chrono::steady_clock::now() - link.last_attempt < reconnect_interval)
                        throw Error(link.failure);
                    connect(link);
                }
                auto key = link.loaded.find(index);
                if (key == link.loaded.end()) {
                    retry_load(link, index);
                    key = link.loaded.find(index);
                }
                ::alarm(agent_sign_deadline_s);
                Bytes sig = sign_for_tls(*key->second, req);
                mark_up(link);
                return sig;
            } catch (const TpmError& e) {
                if (is_object_gone(e.rc()) && attempt == 0) {
                    // Another client of a TPM without a resource manager
                    // flushed it: load it again, once.
                    if (auto gone = link.loaded.find(index); gone != link.loaded.end()) {
                        gone->second->forget();
                        link.loaded.erase(gone);
                    }
                    log_(1, "TPM key agent: " + keys_[index].reference +
                                ": the TPM no longer held the key (another program flushed it); loading it again");
                    continue;
                }
                if (!is_link_failure(e.rc()))
                    throw Error(keys_[index].reference + ": " + e.what());
                // The link broke under a loaded key: reconnect once now.
                link.drop();
                mark_down(link, e.what());
                link.last_attempt = {};
            } catch (const KeyNotLoaded& e) {
                throw Error(keys_[index].reference + ": " + e.what());
            } catch (const Error& e) {
                link.drop();
                mark_down(link, e.what());
                throw Error(keys_[index].reference + ": " + link.failure);
            }
        }
        throw Error(keys_[index].reference + ": " + link.failure);
    }

private:
    // The TPM is there but this key did not load (yet).
    struct KeyNotLoaded : Error {
        using Error::Error;
    };

    void connect(TpmLink& link)
    {
        ::alarm(agent_load_deadline_s);
        link.last_attempt = std::chrono::steady_clock::now();
        link.drop();
        auto ctx = std::make_unique<TpmContext>(link.tcti, 2000);
        link.ctx = std::move(ctx);
        for (std::size_t i : link.keys)
            load(link, i, false);
    }

    // Loads key i into the link; a failure of that key alone is recorded
    // (and rethrown as KeyNotLoaded if `rethrow`), a link failure drops the
    // link and propagates.
    void load(TpmLink& link, std::size_t i, bool rethrow)
    {
        try {
            link.loaded[i] = std::make_unique<LoadedKey>(*link.ctx, keys_[i]);
            if (auto f = key_failures_.find(i); f != key_failures_.end()) {
                key_failures_.erase(f);
                log_(1, "TPM key agent: " + keys_[i].reference + " loaded; it signs again");
            }
            return;
        } catch (const TpmError& e) {
            if (is_link_failure(e.rc())) {
                link.drop();
                throw;
            }
            record_key_failure(i, e.what());
        } catch (const Error& e) {
            record_key_failure(i, e.what());
        }
        link.loaded.erase(i);
        if (rethrow)
            throw KeyNotLoaded(key_failures_[i].why);
    }

    void retry_load(TpmLink& link, std::size_t i)
    {
        auto f = key_failures_.find(i);
        if (f != key_failures_.end() && std::chrono::steady_clock::now() - f->second.at < reconnect_interval)
            throw KeyNotLoaded(f->second.why);
        ::alarm(agent_load_deadline_s);
        load(link, i, true);
    }

    void record_key_failure(std::size_t i, const std::string& why)
    {
        bool first = !key_failures_.contains(i);
        key_failures_[i] = {"the TPM key agent cannot load it: " + why, std::chrono::steady_clock::now()};
        if (first)
            log_(0, "TPM key agent: cannot load " + keys_[i].reference + ": " + why +
                        "; handshakes with it fail until it loads (retried)");
    }

    void mark_down(TpmLink& link, const std::string& why)
    {
        link.failure = "the TPM at " + where(link) + " cannot sign: " + why;
        if (link.up)
            log_(0, "TPM key agent: " + link.failure + "; handshakes with its keys fail until it is back");
        link.up = false;
    }

    void mark_up(TpmLink& link)
    {
        if (!link.up)
            log_(1, "TPM key agent: the TPM at " + where(link) + " answers again; its keys sign");
        link.up = true;
    }

    static std::string where(const TpmLink& link) { return link.tcti.empty() ? "(tpm2-tss default)" : link.tcti; }

    const std::vector<KeySpec>& keys_;
    const AgentLog& log_;
    std::vector<std::unique_ptr<TpmLink>> links_;
    std::vector<TpmLink*> link_of_;
    std::map<std::size_t, KeyFailure> key_failures_;
};

// Every descriptor the agent inherited from the Apache parent (listeners,
// log pipes, other modules' files) except those it needs.
void close_inherited_fds(const std::vector<int>& keep)
{
    std::vector<int> open;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (dirent* e = ::readdir(d)) {
            char* end = nullptr;
            long fd = std::strtol(e->d_name, &end, 10);
            if (*e->d_name && !*end && fd > 2 && fd != ::dirfd(d))
                open.push_back(static_cast<int>(fd));
        }
        ::closedir(d);
    }
    for (int fd : open)
        if (std::find(keep.begin(), keep.end(), fd) == keep.end())
            ::close(fd);
}

// Root is not needed once the socket exists; the TPM's TCTI decides whether
// another user can reach it (see KeyAgent::spawn's caller).
bool drop_privileges(const AgentSetup& setup)
{
    if (::geteuid() != 0 || !setup.run_as_uid || !setup.run_as_gid)
        return true;
    gid_t g = *setup.run_as_gid;
    return ::setgroups(1, &g) == 0 && ::setgid(g) == 0 && ::setuid(*setup.run_as_uid) == 0;
}

} // namespace

namespace {

// What a worker holds of a hosted key: its public facts and the agent's
// index of it. No key material, no PIN, no token session.
// What the parent learns of a hosted key: all a worker's signer needs.
struct HostedFacts {
    std::string describe, backend, engine;
    KeyFacts key;
};

HostedFacts facts_of(const Signer& key)
{
    return {key.describe(), key.backend(), key.engine(),
            KeyFacts{key.algorithm(), key.bits(), key.schemes(), public_key_der(key.public_key().get())}};
}

class HostedKeySigner final : public Signer {
public:
    HostedKeySigner(KeyAgent& agent, std::uint32_t index, HostedFacts facts)
        : agent_(agent), index_(index), describe_(std::move(facts.describe)), backend_(std::move(facts.backend)),
          engine_(std::move(facts.engine)), pk_(facts.key.algorithm), bits_(facts.key.bits),
          schemes_(std::move(facts.key.schemes)), public_der_(std::move(facts.key.public_der))
    {
    }

    std::string describe() const override { return describe_; }
    std::string backend() const override { return backend_; }
    std::string engine() const override { return engine_ + " (in the key agent)"; }
    gnutls_pk_algorithm_t algorithm() const override { return pk_; }
    unsigned bits() const override { return bits_; }
    std::vector<gnutls_sign_algorithm_t> schemes() const override { return schemes_; }
    PubKey public_key() const override { return public_key_from_der(public_der_, describe_); }
    SignerHealth health() const override { return healthy_ ? SignerHealth::ok : SignerHealth::unavailable; }

    Bytes sign(const SignRequest& req) override
    {
        try {
            Bytes sig = agent_.sign(index_, req);
            healthy_ = true;
            return sig;
        } catch (...) {
            healthy_ = false;
            throw;
        }
    }

private:
    KeyAgent& agent_;
    std::uint32_t index_;
    std::string describe_, backend_, engine_;
    gnutls_pk_algorithm_t pk_;
    unsigned bits_;
    std::vector<gnutls_sign_algorithm_t> schemes_;
    Bytes public_der_;
    std::atomic<bool> healthy_{true};
};

// What identifies a hosted key between generations: its public facts (a
// key file replaced under the same name gets a new agent).
Bytes hosted_fingerprint(const HostedFacts& f, std::string_view reference, const KeyOptions& options,
                         std::string_view depends_on)
{
    gnutls_hash_hd_t h;
    if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
        throw Error("key agent: cannot hash a hosted key");
    auto add = [&](std::string_view v) {
        std::uint64_t len = v.size();
        gnutls_hash(h, &len, sizeof len);
        gnutls_hash(h, v.data(), v.size());
    };
    add("hosted");
    add(f.backend);
    add(f.describe);
    add(f.engine);
    add({reinterpret_cast<const char*>(f.key.public_der.data()), f.key.public_der.size()});
    for (auto scheme : f.key.schemes)
        add(std::to_string(scheme));
    add(reference);
    add({options.pin.reveal(), options.pin.size()});
    add({options.srk_pin.reveal(), options.srk_pin.size()});
    add(options.tpm_tcti);
    add(std::to_string(static_cast<int>(options.rsa_engine)));
    add(depends_on);
    Bytes out(32);
    gnutls_hash_deinit(h, out.data());
    return out;
}

// The key check child's answer: length-prefixed strings and numbers.
void put_u32(Bytes& out, std::uint32_t v)
{
    for (int i = 0; i < 4; ++i)
        out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

void put_bytes(Bytes& out, std::span<const std::uint8_t> v)
{
    put_u32(out, static_cast<std::uint32_t>(v.size()));
    out.insert(out.end(), v.begin(), v.end());
}

void put_text(Bytes& out, std::string_view v)
{
    put_bytes(out, {reinterpret_cast<const std::uint8_t*>(v.data()), v.size()});
}

class Reader {
public:
    explicit Reader(const Bytes& in) : in_(in) {}
    std::uint32_t u32()
    {
        need(4);
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i)
            v |= static_cast<std::uint32_t>(in_[at_ + i]) << (8 * i);
        at_ += 4;
        return v;
    }
    Bytes bytes()
    {
        std::uint32_t n = u32();
        need(n);
        Bytes v(in_.begin() + static_cast<std::ptrdiff_t>(at_), in_.begin() + static_cast<std::ptrdiff_t>(at_ + n));
        at_ += n;
        return v;
    }
    std::string text()
    {
        Bytes b = bytes();
        return {b.begin(), b.end()};
    }

private:
    void need(std::size_t n)
    {
        if (in_.size() - at_ < n)
            throw Error("the key check process sent a truncated answer");
    }
    const Bytes& in_;
    std::size_t at_ = 0;
};

Bytes encode_facts(const HostedFacts& f)
{
    Bytes out;
    put_text(out, f.describe);
    put_text(out, f.backend);
    put_text(out, f.engine);
    put_u32(out, static_cast<std::uint32_t>(f.key.algorithm));
    put_u32(out, f.key.bits);
    put_u32(out, static_cast<std::uint32_t>(f.key.schemes.size()));
    for (auto scheme : f.key.schemes)
        put_u32(out, static_cast<std::uint32_t>(scheme));
    put_bytes(out, f.key.public_der);
    return ok_answer(out);
}

HostedFacts decode_facts(const Bytes& answer)
{
    Bytes in = open_answer(answer, "the key check process died without an answer");
    Reader r(in);
    HostedFacts f;
    f.describe = r.text();
    f.backend = r.text();
    f.engine = r.text();
    f.key.algorithm = static_cast<gnutls_pk_algorithm_t>(r.u32());
    f.key.bits = r.u32();
    std::uint32_t n = r.u32();
    if (n == 0 || n > 64)
        throw Error("the key check process sent a malformed answer");
    for (std::uint32_t i = 0; i < n; ++i)
        f.key.schemes.push_back(static_cast<gnutls_sign_algorithm_t>(r.u32()));
    f.key.public_der = r.bytes();
    return f;
}


} // namespace

std::shared_ptr<Signer> KeyAgent::host_by_reference(
    const std::string& reference, const KeyOptions& options, const std::function<void()>& prepare,
    const std::function<std::shared_ptr<Signer>(const std::string&, const KeyOptions&)>& open,
    std::string_view depends_on)
{
    ChildOutput child = run_child(
        "cannot start the key check",
        [&](int fd) {
            Bytes answer;
            try {
                if (prepare)
                    prepare();
                answer = encode_facts(facts_of(*open(reference, options)));
            } catch (const std::exception& e) {
                answer = error_answer(e.what());
            } catch (...) {
                answer = error_answer("the key check failed");
            }
            write_all(fd, answer);
            ::_exit(0);
        },
        1 << 20, std::chrono::seconds(agent_load_deadline_s));
    if (child.timed_out)
        throw Error("checking the key took longer than " + std::to_string(agent_load_deadline_s) +
                    " s (its token or its connection hangs)");
    if (child.output.empty())
        throw Error("the key check process " + describe_exit(child.status) + " without an answer");
    HostedFacts facts = decode_facts(child.output);
    const auto index = static_cast<std::uint32_t>(hosted_.size()) | hosted_key_bit;
    // Another PIN or module set must not keep an agent that logs in with
    // the old ones: they are in the fingerprint (the parent's alone;
    // children wipe it).
    hosted_fp_.push_back(hosted_fingerprint(facts, reference, options, depends_on));
    hosted_backends_.push_back(facts.backend);
    hosted_.push_back(nullptr); // opened by the agent
    KeyOptions kept = options;
    kept.notice = nullptr;
    kept.secret_sources = nullptr; // the configuration's, gone by then
    recipes_.push_back({reference, std::move(kept), facts.key.public_der});
    return std::make_shared<HostedKeySigner>(*this, index, std::move(facts));
}

bool KeyAgent::hosts_backend(std::string_view backend) const
{
    return std::find(hosted_backends_.begin(), hosted_backends_.end(), backend) != hosted_backends_.end();
}

std::size_t KeyAgent::add_key(const KeySpec& spec, const KeyFacts& facts)
{
    keys_.push_back(spec);
    facts_.emplace_back(spec_fingerprint(spec), facts);
    return keys_.size() - 1;
}

Bytes spec_fingerprint(const KeySpec& k)
{
    gnutls_hash_hd_t h;
    if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
        throw Error("TPM key agent: cannot hash a key spec");
    // Every field length-prefixed, so that no two specs hash alike.
    auto add = [&](const void* data, std::size_t n) {
        std::uint64_t len = n;
        gnutls_hash(h, &len, sizeof len);
        gnutls_hash(h, data, n);
    };
    auto add_str = [&](std::string_view v) { add(v.data(), v.size()); };
    add_str(k.reference);
    add(&k.persistent, sizeof k.persistent);
    add_str(k.tcti);
    add(k.auth.reveal(), k.auth.size());
    add(k.parent_auth.reveal(), k.parent_auth.size());
    add_str(k.file ? "file" : "handle");
    if (k.file) {
        const Tss2KeyFile& f = *k.file;
        add_str(f.type_oid);
        const std::uint8_t flags[] = {static_cast<std::uint8_t>(f.empty_auth.has_value()),
                                      static_cast<std::uint8_t>(f.empty_auth.value_or(false)),
                                      static_cast<std::uint8_t>(f.has_policy), static_cast<std::uint8_t>(f.has_secret),
                                      static_cast<std::uint8_t>(f.rsa_parent)};
        add(flags, sizeof flags);
        add(&f.parent, sizeof f.parent);
        add(f.public_area.data(), f.public_area.size());
        add(f.private_area.data(), f.private_area.size());
    }
    Bytes out(32);
    gnutls_hash_deinit(h, out.data());
    return out;
}

Bytes KeyAgent::fingerprint() const
{
    gnutls_hash_hd_t h;
    if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
        throw Error("key agent: cannot hash the key list");
    for (const auto& [fp, facts] : facts_)
        gnutls_hash(h, fp.data(), fp.size());
    for (const Bytes& fp : hosted_fp_)
        gnutls_hash(h, fp.data(), fp.size());
    Bytes out(32);
    gnutls_hash_deinit(h, out.data());
    return out;
}

Bytes setup_fingerprint(const AgentSetup& setup)
{
    gnutls_hash_hd_t h;
    if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
        throw Error("key agent: cannot hash its setup");
    auto add = [&](const void* data, std::size_t n) {
        std::uint64_t len = n;
        gnutls_hash(h, &len, sizeof len);
        gnutls_hash(h, data, n);
    };
    for (uid_t u : setup.allowed_uids)
        add(&u, sizeof u);
    const std::int64_t run_as[] = {setup.run_as_uid ? static_cast<std::int64_t>(*setup.run_as_uid) : -1,
                                   setup.run_as_gid ? static_cast<std::int64_t>(*setup.run_as_gid) : -1};
    add(run_as, sizeof run_as);
    for (int fd : setup.keep_fds) {
        struct stat st{};
        if (::fstat(fd, &st) == 0) {
            const std::uint64_t id[] = {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
            add(id, sizeof id);
        }
    }
    Bytes out(32);
    gnutls_hash_deinit(h, out.data());
    return out;
}

KeyAgent::~KeyAgent()
{
    if (previous_)
        stop_agent_process(*previous_);
    wipe_recipes(); // freed heap is in every process forked later
}

void KeyAgent::wipe_recipes()
{
    for (auto& r : recipes_) {
        gnutls_memset(r.reference.data(), 0, r.reference.size()); // a pin-value, perhaps
        r.options.pin = Secret{};
        r.options.srk_pin = Secret{};
    }
    recipes_.clear();
    for (auto& fp : hosted_fp_)
        gnutls_memset(fp.data(), 0, fp.size());
}

std::optional<KeyFacts> KeyAgent::known_facts(const KeySpec& spec)
{
    if (!previous_)
        return std::nullopt;
    if (!spec.file) {
        // handle: the TPM may hold another key there now.
        stop_agent_process(*previous_);
        previous_.reset();
        return std::nullopt;
    }
    Bytes fp = spec_fingerprint(spec);
    for (const auto& [known, facts] : previous_->facts)
        if (known == fp)
            return facts;
    stop_agent_process(*previous_);
    previous_.reset();
    return std::nullopt;
}

bool KeyAgent::adopt_previous(const AgentSetup& setup)
{
    if (!previous_)
        return false;
    std::unique_ptr<RunningAgent> p = std::move(previous_);
    int status;
    const bool runs = p->pid > 0 && ::waitpid(p->pid, &status, WNOHANG) == 0;
    const Bytes wanted = setup_fingerprint(setup);
    if (!runs || listen_fd_ >= 0 || p->listen_fd < 0 || p->fingerprint != fingerprint() || p->setup != wanted) {
        if (!runs)
            p->pid = -1; // reaped just now, or gone
        stop_agent_process(*p);
        return false;
    }
    pid_ = p->pid;
    listen_fd_ = p->listen_fd;
    address_ = p->address;
    std::memcpy(token_, p->token, sizeof token_);
    gnutls_memset(p->token, 0, sizeof p->token);
    setup_ = wanted;
    active_ = true;
    return true;
}

std::unique_ptr<RunningAgent> KeyAgent::release()
{
    if (listen_fd_ < 0)
        return nullptr;
    auto r = std::make_unique<RunningAgent>();
    r->pid = pid_;
    r->listen_fd = listen_fd_;
    r->address = address_;
    std::memcpy(r->token, token_, sizeof token_);
    r->fingerprint = fingerprint();
    r->facts = facts_;
    r->setup = setup_;
    pid_ = -1;
    listen_fd_ = -1;
    active_ = false;
    return r;
}

std::vector<std::string> KeyAgent::tctis() const
{
    std::vector<std::string> out;
    for (auto& k : keys_)
        if (std::find(out.begin(), out.end(), k.tcti) == out.end())
            out.push_back(k.tcti);
    return out;
}

// Everything the agent's client threads share. Allocated once and never
// freed: the threads are detached and the agent ends with _exit, so no
// unwinding (an exception, the end of serve()) may destroy what a thread
// still uses.
class KeyAgent::Serving {
public:
    Serving(std::vector<std::shared_ptr<Signer>>& hosted, const std::vector<std::string>& backends,
            const std::function<std::shared_ptr<Signer>(std::size_t)>& open, const AgentLog& log)
        : hosted_(hosted), backends_(backends), open_(open), log_(log), slots_(hosted.size())
    {
    }

    // Opens the hosted keys of one backend kind (`files`: key files, read
    // with the parent's rights before the agent drops them; else the
    // rest, tokens, as the agent's user). Bounded by the caller's alarm().
    void open_all(bool files)
    {
        for (std::size_t i = 0; i < hosted_.size(); ++i)
            if (!hosted_[i] && (backends_[i] == "file") == files) {
                std::lock_guard one(slots_[i].opening);
                open_locked(i);
            }
    }

    void start_tpm(const std::vector<KeySpec>& keys) { loop_.emplace(keys, log_); }

    // A detached thread ends the agent when a hosted key's signature (or
    // open) has run past agent_sign_deadline_s: a hung token or network
    // HSM would otherwise hold its threads for ever, and only a new agent
    // (the parent starts one) gets a fresh connection to it.
    void watch_deadlines()
    {
        std::thread([this] {
            for (;;) {
                std::this_thread::sleep_for(std::chrono::seconds(1));
                std::lock_guard lock(inflight_mutex_);
                const auto now = std::chrono::steady_clock::now();
                for (const auto& [id, started] : inflight_)
                    if (now - started > std::chrono::seconds(agent_sign_deadline_s)) {
                        log_(0, "key agent: a signature by an isolated key did not finish in " +
                                    std::to_string(agent_sign_deadline_s) +
                                    " s (its token or its connection hangs); the agent ends and a new one starts");
                        ::_exit(3);
                    }
            }
        }).detach();
    }

    Bytes handle(std::span<const std::uint8_t> msg)
    {
        std::optional<AgentRequest> r = decode_request(msg);
        if (!r)
            return error_answer("malformed request");
        try {
            if (r->key & hosted_key_bit) {
                const std::size_t i = r->key & ~hosted_key_bit;
                if (i >= hosted_.size())
                    return error_answer("no such key");
                InFlight timed(*this);
                return ok_answer(signer(i).sign(r->request));
            }
            std::lock_guard turn(tpm_turn_);
            try {
                // AgentLoop arms alarm() around each TPM command.
                Bytes reply = ok_answer(loop_->sign(r->key, r->request));
                ::alarm(0);
                return reply;
            } catch (...) {
                ::alarm(0);
                throw;
            }
        } catch (const std::exception& e) {
            return error_answer(e.what());
        } catch (...) {
            return error_answer("the key agent failed");
        }
    }

    // Flushes the TPM's objects once no TPM command is in flight, and ends.
    [[noreturn]] void finish(int status)
    {
        tpm_turn_.lock();
        loop_.reset();
        ::_exit(status);
    }

private:
    struct Slot {
        std::mutex opening;
        std::chrono::steady_clock::time_point last_try{};
        std::string failure;
        bool refused = false; // a PIN the token refused: never tried again
    };

    class InFlight {
    public:
        explicit InFlight(Serving& s) : s_(s)
        {
            std::lock_guard lock(s_.inflight_mutex_);
            id_ = ++s_.next_id_;
            s_.inflight_.emplace(id_, std::chrono::steady_clock::now());
        }
        ~InFlight()
        {
            std::lock_guard lock(s_.inflight_mutex_);
            s_.inflight_.erase(id_);
        }

    private:
        Serving& s_;
        std::uint64_t id_ = 0;
    };

    // A key that did not open at start (its token was away) is tried again
    // at its next signature, at most once a second.
    Signer& signer(std::size_t i)
    {
        std::lock_guard one(slots_[i].opening);
        if (!hosted_[i]) {
            if (slots_[i].refused || std::chrono::steady_clock::now() - slots_[i].last_try < std::chrono::seconds(1))
                throw Error("the key agent cannot open the key: " + slots_[i].failure);
            open_locked(i);
            if (!hosted_[i])
                throw Error("the key agent cannot open the key: " + slots_[i].failure);
        }
        return *hosted_[i];
    }

    void open_locked(std::size_t i)
    {
        Slot& slot = slots_[i];
        slot.last_try = std::chrono::steady_clock::now();
        try {
            hosted_[i] = open_(i);
            if (!slot.failure.empty())
                log_(1, "key agent: " + hosted_[i]->describe() + " opened; it signs again");
            slot.failure.clear();
        } catch (const SecretRefused& e) {
            log_(0, std::string("key agent: cannot open an isolated key: ") + e.what() +
                        "; not tried again (tokens lock after a few wrong PINs): fix the PIN and restart Apache");
            slot.failure = e.what();
            slot.refused = true;
        } catch (const std::exception& e) {
            if (slot.failure.empty())
                log_(0, std::string("key agent: cannot open an isolated key: ") + e.what() +
                            "; handshakes with it fail until it opens (retried)");
            slot.failure = e.what();
        }
    }

    std::vector<std::shared_ptr<Signer>>& hosted_;
    const std::vector<std::string>& backends_;
    std::function<std::shared_ptr<Signer>(std::size_t)> open_;
    const AgentLog& log_;
    std::vector<Slot> slots_;
    std::mutex tpm_turn_; // the TPM serves one command at a time; alarm() is per process
    std::optional<AgentLoop> loop_;
    std::mutex inflight_mutex_;
    std::map<std::uint64_t, std::chrono::steady_clock::time_point> inflight_;
    std::uint64_t next_id_ = 0;
};

pid_t KeyAgent::spawn(const AgentSetup& setup)
{
    if (listen_fd_ < 0) {
        if (gnutls_rnd(GNUTLS_RND_KEY, token_, sizeof token_) < 0)
            throw Error("key agent: no random token");
        std::uint8_t name[12];
        gnutls_rnd(GNUTLS_RND_NONCE, name, sizeof name);
        address_ = "mod_gnutls-key-agent-" + mgs::hex(name);
        UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        if (!fd)
            throw Error("key agent: " + errno_text("socket"));
        socklen_t len;
        sockaddr_un a = abstract_address(address_, len);
        if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), len) < 0 || ::listen(fd.get(), 128) < 0)
            throw Error("key agent: " + errno_text("bind/listen"));
        listen_fd_ = fd.release();
    }
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0)
        throw Error("key agent: " + errno_text("fork"));
    if (pid == 0) {
        // Apache's restart signals reach the whole process group (prefork
        // sends SIGHUP to it for a restart): the agent ignores them and is
        // stopped, or kept, by the parent with SIGTERM. SIGINT ends it.
        for (int sig : {SIGTERM, SIGINT, SIGCHLD, SIGALRM})
            ::signal(sig, SIG_DFL);
        for (int sig : {SIGPIPE, SIGHUP, SIGUSR1, SIGWINCH})
            ::signal(sig, SIG_IGN);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        std::vector<int> keep = setup.keep_fds;
        keep.push_back(listen_fd_);
        close_inherited_fds(keep);
        auto* serving = new Serving(hosted_, hosted_backends_,
                                    [this, &setup](std::size_t i) { return open_recipe(i, setup); },
                                    setup.log); // never freed: see Serving
        // Key files are read with the parent's rights (often root's alone),
        // before they are dropped; bounded like loading TPM keys.
        ::alarm(agent_load_deadline_s);
        serving->open_all(true);
        ::alarm(0);
        if (!drop_privileges(setup)) {
            setup.log(0, errno_text("key agent: cannot drop root privileges"));
            ::_exit(1);
        }
        // After the credential change, which clears both: the agent ends
        // with the parent, and processes of its user cannot read its memory.
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        ::prctl(PR_SET_DUMPABLE, 0);
        if (::getppid() != parent)
            ::_exit(0);
        serve(setup, serving);
    }
    pid_ = pid;
    active_ = true;
    setup_ = setup_fingerprint(setup);
    return pid;
}

namespace {
volatile sig_atomic_t stop_requested = 0;
void request_stop(int) { stop_requested = 1; }
} // namespace

std::shared_ptr<Signer> KeyAgent::open_recipe(std::size_t i, const AgentSetup& setup) const
{
    if (!setup.open_key)
        throw Error("the key agent cannot open keys");
    std::shared_ptr<Signer> key = setup.open_key(recipes_[i].reference, recipes_[i].options);
    // The key the parent's check found, not another one the reference now
    // names (a token object replaced, a URL matching several).
    if (public_key_der(key->public_key().get()) != recipes_[i].public_der)
        throw Error(key->describe() + " is not the key checked at startup (its public key differs); restart "
                                      "Apache after changing a key");
    return key;
}

void KeyAgent::serve(const AgentSetup& setup, Serving* st)
{
    // SIGTERM ends the loop so that the loaded keys are flushed: a TPM
    // without a resource manager (swtpm) keeps them otherwise, and has few
    // slots. It is blocked except while waiting in ppoll, so none is lost.
    // SIGALRM keeps its default action: a TPM command (or opening a key)
    // that outlives its deadline ends the agent, and the parent starts
    // another.
    struct sigaction sa{};
    sa.sa_handler = request_stop;
    ::sigaction(SIGTERM, &sa, nullptr);
    sigset_t term, waiting;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    ::sigprocmask(SIG_BLOCK, &term, &waiting);
    sigdelset(&waiting, SIGTERM);
    try {
        if (setup.before_serving)
            setup.before_serving();
        ::alarm(agent_load_deadline_s);
        st->open_all(false); // token keys, as the agent's user (as the workers did)
        st->start_tpm(keys_);
        ::alarm(0);
        st->watch_deadlines();
        AgentPolicy policy;
        policy.token = {token_, sizeof token_};
        policy.allowed_uids = setup.allowed_uids;
        // Each client connection has a thread of its own: hosted keys sign
        // in parallel, as they did in the workers, and the main thread
        // never signs (a hung token cannot stop it accepting or ending).
        policy.max_threads = agent_max_threads;
        auto* connections = new AgentConnections(listen_fd_, policy, setup.log); // never freed: see Serving
        RequestHandler handle = [st](std::span<const std::uint8_t> msg) { return st->handle(msg); };
        while (!stop_requested)
            connections->run_once(&waiting, handle);
        st->finish(0);
    } catch (const std::exception& e) {
        setup.log(0, std::string("key agent stopped: ") + e.what());
    } catch (...) {
        setup.log(0, "key agent stopped");
    }
    st->finish(1);
}

void stop_agent_process(RunningAgent& agent)
{
    if (agent.pid > 0) {
        // A hung TPM can hold the agent in a command: wait
        // agent_stop_deadline_ms for it, then kill it.
        ::kill(agent.pid, SIGTERM);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(agent_stop_deadline_ms);
        int status;
        pid_t r;
        while ((r = ::waitpid(agent.pid, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline)
            ::usleep(10000);
        if (r == 0) {
            ::kill(agent.pid, SIGKILL);
            while (::waitpid(agent.pid, &status, 0) < 0 && errno == EINTR) {
            }
        }
        agent.pid = -1;
    }
    if (agent.listen_fd >= 0)
        ::close(agent.listen_fd);
    agent.listen_fd = -1;
    gnutls_memset(agent.token, 0, sizeof agent.token);
}

void KeyAgent::stop()
{
    RunningAgent running;
    running.pid = pid_;
    running.listen_fd = listen_fd_;
    stop_agent_process(running);
    pid_ = -1;
    listen_fd_ = -1;
    active_ = false;
    if (previous_) {
        stop_agent_process(*previous_);
        previous_.reset();
    }
}

void KeyAgent::close_listener_in_child()
{
    for (auto& k : keys_) {
        k.auth = Secret{};
        k.parent_auth = Secret{};
    }
    // The keys the agent hosts: their destructors wipe them (GnuTLS, libcrypto
    // and Secret zero what they held), and this process never signs with
    // them.
    hosted_.clear();
    wipe_recipes();
    hosted_fp_.clear();
    // The fingerprints hash the authorizations: not for children either.
    for (auto& [fp, facts] : facts_)
        gnutls_memset(fp.data(), 0, fp.size());
    facts_.clear();
    if (previous_) {
        gnutls_memset(previous_->token, 0, sizeof previous_->token);
        previous_.reset(); // the parent's to stop, not ours
    }
    if (listen_fd_ >= 0)
        ::close(listen_fd_);
    listen_fd_ = -1;
    pid_ = -1; // not ours to stop
}

int KeyAgent::connect_client()
{
    UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!fd)
        throw Error("key agent: " + errno_text("socket"));
    timeval tv{client_timeout_s, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    socklen_t len;
    sockaddr_un a = abstract_address(address_, len);
    int rc;
    while ((rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), len)) < 0 && errno == EINTR) {
        // An interrupted AF_UNIX connect leaves the socket unconnected: again.
    }
    if (rc < 0)
        throw Error(errno_text("cannot reach the key agent"));
    if (send_message(fd.get(), token_, sizeof token_) != static_cast<ssize_t>(sizeof token_))
        throw Error(errno_text("cannot reach the key agent"));
    return fd.release();
}

Bytes KeyAgent::sign(std::size_t index, const SignRequest& req)
{
    if (!active() && (index & hosted_key_bit))
        throw Error("the key is held by the key agent, which does not run (yet)");
    Bytes msg = encode_request(static_cast<std::uint32_t>(index), req);

    // A pooled connection may have died with a previous agent: one retry on
    // a fresh connection.
    for (int attempt = 0; attempt < 2; ++attempt) {
        int fd = -1;
        bool pooled = false;
        {
            std::lock_guard lock(pool_mutex_);
            if (pool_pid_ != ::getpid()) {
                idle_.clear(); // the parent's connections (none, normally)
                pool_pid_ = ::getpid();
            }
            if (!idle_.empty()) {
                fd = idle_.back();
                idle_.pop_back();
                pooled = true;
            }
        }
        if (fd < 0)
            fd = connect_client();
        std::vector<std::uint8_t> buf(max_message);
        ssize_t n = -1;
        if (send_message(fd, msg.data(), msg.size()) == static_cast<ssize_t>(msg.size()))
            n = receive_message(fd, buf.data(), buf.size());
        if (n <= 0) {
            bool timed_out = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
            std::string why = n == 0    ? std::string("the key agent closed the connection")
                              : timed_out ? "the key agent did not answer within " +
                                                std::to_string(client_timeout_s) + " s (is its TPM or token hung?)"
                                          : errno_text("the key agent did not answer");
            ::close(fd);
            // Retry only a connection the agent had closed (it restarted);
            // a slow agent would just make the handshake wait twice.
            if (pooled && attempt == 0 && !timed_out)
                continue;
            throw Error(why);
        }
        {
            std::lock_guard lock(pool_mutex_);
            idle_.push_back(fd);
        }
        return open_answer({buf.data(), static_cast<std::size_t>(n)}, "the key agent sent nothing");
    }
    throw Error("the key agent is unreachable");
}

} // namespace mgs::tpm
