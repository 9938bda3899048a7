// Authorizer: who is asking (authentication) and whether they may (ACLs, acl.h).
//
// A principal comes from the client's verified certificate under mutual TLS (its CN, see
// core/tls.h PeerPrincipal), or from `Authorization: Bearer <token>` where TLS ends before the
// broker: tokens are API keys stored only as their SHA-256 (`auth.api_keys`). A request that
// carries a token is judged by the token, whatever its certificate.
// Auth is on when the broker requires client certificates, has API keys, or says
// `auth.required: true`; then a request without a valid identity is refused 401, and one whose
// principal no ACL allows is refused 403 (deny by default). With auth off (a development broker
// on loopback) every request is the principal "anonymous" and everything is allowed.
// ACLs come from `auth.acls` or from `auth.acl_file`, which is read again when it changes (checked
// at most once a second); a file that fails to load keeps the ACLs in force and logs why.
// Thread-safety: thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cloud-broker/auth/acl.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/http.h"
#include "core/status.h"

namespace sluice::broker {

inline constexpr const char* kAnonymous = "anonymous";

struct ApiKey {
  std::string principal;
  std::string sha256_hex;  // lower-case hex of SHA-256(token)
};

struct AuthOptions {
  bool required = false;
  std::vector<ApiKey> api_keys;
  std::vector<AclRule> acls;  // auth.acls (inline, fixed)
  std::string acl_file;       // auth.acl_file (reloaded when it changes); empty: none
};

// Reads auth.* (required, api_keys, acls, acl_file). `client_certs_required`: the broker asks every
// client for a certificate (http.tls.client_ca_file), which turns auth on. Throws ConfigError,
// also when auth is on and no ACL is configured (it would refuse every request).
AuthOptions LoadAuthOptions(const Config& cfg, bool client_certs_required);

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(const std::string& data);

class Authorizer {
 public:
  // Loads acl_file once; a bad file here is a start-up error (InvalidArgument).
  static Result<std::unique_ptr<Authorizer>> Create(AuthOptions options, const Clock& clock);

  bool required() const { return options_.required; }

  // The request's principal, or Unauthenticated-style refusal: PermissionDenied with the reason
  // (the caller answers 401).
  Result<std::string> Authenticate(const HttpRequest& request) const;

  bool Allows(const std::string& principal, AclOp op, const std::string& resource);

 private:
  Authorizer(AuthOptions options, const Clock& clock);
  Status LoadFile();
  void MaybeReload();

  const AuthOptions options_;
  const Clock& clock_;
  std::mutex mu_;
  std::shared_ptr<const AclSet> file_acls_;  // guarded by mu_
  int64_t checked_ms_ = 0;
  int64_t file_mtime_ns_ = -1;
  int64_t file_size_ = -1;
  AclSet inline_acls_;
};

}  // namespace sluice::broker
