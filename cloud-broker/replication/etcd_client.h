// EtcdClient: the part of etcd's v3 API replication needs (KV, transactions, leases, elections),
// spoken through etcd's JSON gateway (`POST <endpoint>/v3/...`, keys and values base64) with
// core's HttpClient, so the broker needs no gRPC. Endpoints are a list: a transport failure or an
// `Unavailable` answer moves on to the next member; any other answer is final.
// Leases: KeepAlive sends one request per keep-alive (the gateway ignores every message after the
// first of a streamed request). Campaign blocks until elected or `campaign_timeout_ms` passes.
// Errors: kNotFound (no such lease), kUnavailable (no member answered: retry), kInvalidArgument
// (etcd refused the request), kCorruption (an answer that is not what etcd sends).
// Thread-safety: thread-safe (each call uses its own request; the clients are per endpoint).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "core/http.h"
#include "core/status.h"

namespace sluice::broker {

struct EtcdKeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
};

// One comparison of a transaction (etcd Compare).
struct EtcdCompare {
  enum class Target { kCreateRevision, kModRevision, kVersion, kValue };
  enum class Op { kEqual, kNotEqual, kGreater, kLess };
  std::string key;
  Target target = Target::kVersion;
  Op op = Op::kEqual;
  int64_t number = 0;  // for the revision and version targets
  std::string value;   // for kValue

  // The key does not exist (create_revision == 0).
  static EtcdCompare Absent(const std::string& key);
  // The key still has this mod revision (nobody wrote it since it was read).
  static EtcdCompare ModRevisionIs(const std::string& key, int64_t revision);
  // The key exists with this create revision (the same incarnation of an ephemeral key).
  static EtcdCompare CreateRevisionIs(const std::string& key, int64_t revision);
};

// One operation of a transaction.
struct EtcdOp {
  enum class Kind { kPut, kDelete, kRange };
  Kind kind = Kind::kPut;
  std::string key;
  std::string value;      // kPut
  int64_t lease = 0;      // kPut: attach to this lease (0: none)
  bool prefix = false;    // kDelete/kRange: every key starting with `key`

  static EtcdOp Put(const std::string& key, const std::string& value, int64_t lease = 0);
  static EtcdOp Delete(const std::string& key);
  static EtcdOp Get(const std::string& key, bool prefix = false);
};

struct EtcdTxnResult {
  bool succeeded = false;
  int64_t revision = 0;  // the store's revision after the transaction
  // Results of the kRange operations of the branch that ran, in order.
  std::vector<std::vector<EtcdKeyValue>> ranges;
};

struct EtcdClientOptions {
  int64_t request_timeout_ms = 5000;
  int64_t campaign_timeout_ms = 30000;
  TlsClientOptions tls;  // for https:// endpoints
};

class EtcdClient {
 public:
  // kInvalidArgument if `endpoints` is empty.
  static Result<std::unique_ptr<EtcdClient>> Create(std::vector<std::string> endpoints,
                                                    EtcdClientOptions options = {});
  ~EtcdClient();

  // Returns the revision of the write.
  Result<int64_t> Put(const std::string& key, const std::string& value, int64_t lease = 0);
  Result<std::optional<EtcdKeyValue>> Get(const std::string& key);
  // Every key starting with `prefix`, in key order; *revision (if set) the store's revision.
  Result<std::vector<EtcdKeyValue>> GetPrefix(const std::string& prefix,
                                              int64_t* revision = nullptr);
  // Returns how many keys were deleted.
  Result<int64_t> Delete(const std::string& key, bool prefix = false);
  Result<EtcdTxnResult> Txn(const std::vector<EtcdCompare>& compares,
                            const std::vector<EtcdOp>& success,
                            const std::vector<EtcdOp>& failure = {});

  // A lease of ttl_s seconds; returns its id.
  Result<int64_t> GrantLease(int64_t ttl_s);
  // Refreshes the lease; returns its TTL in seconds. kNotFound once it expired or was revoked.
  Result<int64_t> KeepAlive(int64_t lease);
  Status RevokeLease(int64_t lease);

  // Elections (etcd's v3election service). Campaign returns once this lease holds the
  // leadership of `name` (the leader key, whose create revision orders the candidates), or
  // kUnavailable after campaign_timeout_ms (campaign again). Leader: the current leader's key and
  // value, nullopt if none. Resign gives it up (also implied when the lease ends).
  Result<EtcdKeyValue> Campaign(const std::string& name, int64_t lease, const std::string& value);
  Result<std::optional<EtcdKeyValue>> Leader(const std::string& name);
  Status Resign(const std::string& name, const EtcdKeyValue& leader_key);

  const std::vector<std::string>& endpoints() const { return endpoints_; }
  const EtcdClientOptions& options() const { return options_; }

 private:
  EtcdClient(std::vector<std::string> endpoints, EtcdClientOptions options);
  // POSTs `body` to `path` on the current endpoint, moving on to the next on transport failure
  // or an Unavailable answer; the parsed JSON answer's text on 200.
  Result<std::string> Call(const std::string& path, const std::string& body, bool campaign);
  // Call, then the answer as a JSON object (kCorruption if it is not one).
  Result<rapidjson::Document> CallJson(const std::string& path, const std::string& body,
                                       bool campaign);

  const std::vector<std::string> endpoints_;
  const EtcdClientOptions options_;
  std::vector<std::unique_ptr<HttpClient>> clients_;           // per endpoint
  std::vector<std::unique_ptr<HttpClient>> campaign_clients_;  // per endpoint, long timeout
  std::mutex mu_;
  size_t current_ = 0;  // guarded by mu_: the endpoint that answered last
};

}  // namespace sluice::broker
