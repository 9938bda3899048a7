#include "cloud-broker/auth/authorizer.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include "core/logging.h"

namespace sluice::broker {
namespace {

constexpr const char* kComponent = "auth";
constexpr size_t kMaxTokenBytes = 512;
constexpr int64_t kReloadCheckMs = 1000;

bool ValidPrincipalName(const std::string& p) {
  if (p.empty() || p.size() > 256) {
    return false;
  }
  for (char c : p) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return false;
    }
  }
  return true;
}

bool IsLowerHex64(const std::string& s) {
  if (s.size() != 64) {
    return false;
  }
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

// Compares without an early exit, so the time taken says nothing about where they differ.
bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) {
    return false;
  }
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

}  // namespace

std::string Sha256Hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

AuthOptions LoadAuthOptions(const Config& cfg, bool client_certs_required) {
  AuthOptions o;
  std::vector<Config> keys = cfg.GetList("auth.api_keys");
  for (const Config& k : keys) {
    ApiKey key;
    key.principal = k.RequireString("principal");
    if (!ValidPrincipalName(key.principal)) {
      k.Fail("principal", "must be 1..256 printable bytes");
    }
    key.sha256_hex = k.RequireString("sha256");
    if (!IsLowerHex64(key.sha256_hex)) {
      k.Fail("sha256", "must be the 64 lower-case hex digits of the token's SHA-256 (e.g. "
                       "`printf %s \"$TOKEN\" | sha256sum`); the token itself is never stored");
    }
    o.api_keys.push_back(std::move(key));
  }
  o.required = cfg.GetBool("auth.required", client_certs_required || !o.api_keys.empty());
  if (!o.required && client_certs_required) {
    cfg.Fail("auth.required", "cannot be false while http.tls.client_ca_file asks for client "
                              "certificates");
  }
  if (!o.required && !o.api_keys.empty()) {
    cfg.Fail("auth.required", "cannot be false while auth.api_keys are configured");
  }
  o.acls = AclSet::FromConfig(cfg, "auth.acls").rules();
  o.acl_file = cfg.GetString("auth.acl_file", "");
  if (o.required && o.acls.empty() && o.acl_file.empty()) {
    cfg.Fail("auth.acls", "auth is on (client certificates or API keys) but no ACL is set: every "
                          "request would be refused; set auth.acls or auth.acl_file");
  }
  return o;
}

Authorizer::Authorizer(AuthOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock), inline_acls_(options_.acls) {}

Result<std::unique_ptr<Authorizer>> Authorizer::Create(AuthOptions options, const Clock& clock) {
  std::unique_ptr<Authorizer> a(new Authorizer(std::move(options), clock));
  if (!a->options_.acl_file.empty()) {
    Status st = a->LoadFile();
    if (!st.ok()) {
      return st;
    }
  }
  return a;
}

Status Authorizer::LoadFile() {
  struct stat sb {};
  if (stat(options_.acl_file.c_str(), &sb) != 0) {
    return Status::InvalidArgument("auth.acl_file: cannot read " + options_.acl_file);
  }
  try {
    Config file = Config::Load(options_.acl_file);
    auto acls = std::make_shared<const AclSet>(AclSet::FromConfig(file, "acls"));
    file.RejectUnknownKeys();
    std::lock_guard<std::mutex> lock(mu_);
    file_acls_ = std::move(acls);
    file_mtime_ns_ = static_cast<int64_t>(sb.st_mtim.tv_sec) * 1000000000 + sb.st_mtim.tv_nsec;
    file_size_ = static_cast<int64_t>(sb.st_size);
  } catch (const ConfigError& e) {
    return Status::InvalidArgument(e.what());
  }
  return Status::Ok();
}

void Authorizer::MaybeReload() {
  if (options_.acl_file.empty()) {
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t now = clock_.NowMs();
    if (now - checked_ms_ < kReloadCheckMs) {
      return;
    }
    checked_ms_ = now;
    struct stat sb {};
    if (stat(options_.acl_file.c_str(), &sb) != 0) {
      return;  // keep what is in force
    }
    const int64_t mtime =
        static_cast<int64_t>(sb.st_mtim.tv_sec) * 1000000000 + sb.st_mtim.tv_nsec;
    if (mtime == file_mtime_ns_ && static_cast<int64_t>(sb.st_size) == file_size_) {
      return;
    }
  }
  Status st = LoadFile();
  if (st.ok()) {
    LogInfo(kComponent, "reloaded ACLs from " + options_.acl_file);
  } else {
    LogError(kComponent, "keeping the ACLs in force: " + st.message());
    std::lock_guard<std::mutex> lock(mu_);
    struct stat sb {};
    if (stat(options_.acl_file.c_str(), &sb) == 0) {  // do not retry the same bad file
      file_mtime_ns_ = static_cast<int64_t>(sb.st_mtim.tv_sec) * 1000000000 + sb.st_mtim.tv_nsec;
      file_size_ = static_cast<int64_t>(sb.st_size);
    }
  }
}

Result<std::string> Authorizer::Authenticate(const HttpRequest& request) const {
  const std::string auth = request.Header("authorization");
  if (!auth.empty()) {
    constexpr std::string_view kBearer = "Bearer ";
    if (auth.size() <= kBearer.size() || auth.compare(0, kBearer.size(), kBearer) != 0 ||
        auth.size() > kBearer.size() + kMaxTokenBytes) {
      return Status::PermissionDenied("Authorization must be \"Bearer <token>\"");
    }
    const std::string digest = Sha256Hex(auth.substr(kBearer.size()));
    const ApiKey* found = nullptr;
    for (const ApiKey& k : options_.api_keys) {
      if (ConstantTimeEquals(k.sha256_hex, digest) && found == nullptr) {
        found = &k;
      }
    }
    if (found == nullptr) {
      return Status::PermissionDenied("the bearer token is not a known API key");
    }
    return found->principal;
  }
  if (!request.tls_principal.empty()) {
    return request.tls_principal;
  }
  if (!options_.required) {
    return std::string(kAnonymous);
  }
  return Status::PermissionDenied(
      "no credentials: present a client certificate (mutual TLS) or Authorization: Bearer <key>");
}

bool Authorizer::Allows(const std::string& principal, AclOp op, const std::string& resource) {
  if (!options_.required) {
    return true;
  }
  if (inline_acls_.Allows(principal, op, resource)) {
    return true;
  }
  MaybeReload();
  std::shared_ptr<const AclSet> file;
  {
    std::lock_guard<std::mutex> lock(mu_);
    file = file_acls_;
  }
  return file != nullptr && file->Allows(principal, op, resource);
}

}  // namespace sluice::broker
