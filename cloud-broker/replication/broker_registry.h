// BrokerRegistration: a broker's membership of its region, Kafka's ZooKeeper-era /brokers/ids
// with etcd: the key `/sluice/regions/<region>/brokers/<id>` holds {"id","region","url"} under a
// lease this broker keeps alive (one keep-alive request every keepalive_interval_ms). The key's
// create revision is the broker's incarnation: a restarted broker registers anew and gets a
// larger one, so the controller can tell a restart from a broker that stayed up.
// - Start registers with a create-if-absent transaction. After a crash the previous incarnation's
//   key lives until its lease expires (lease_ttl_s); Start waits for that, and fails if the id
//   stays taken by a live broker (two brokers with one id is a misconfiguration).
// - Lost registration: if a keep-alive finds the lease gone, or none was answered within the
//   TTL (less a margin, counted from the last answered one's sending; a keep-alive stuck on an
//   unreachable etcd does not delay it: etcd has expired the lease or is about to), on_lost
//   runs (a leader must stop acknowledging at once: fencing), then it registers again as a new
//   incarnation and on_registered runs.
// - Stop revokes the lease, so the region sees the broker gone at once (a clean shutdown);
//   Abandon stops keeping it alive without revoking (a crash, for tests).
// Thread-safety: thread-safe. Callbacks run on the registration's own thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cloud-broker/replication/etcd_client.h"
#include "core/status.h"

namespace sluice::broker {

struct BrokerInfo {
  std::string id;
  std::string region;
  std::string url;          // the advertised URL peers and clients dial
  int64_t incarnation = 0;  // create revision of its registration key; 0: not registered
};

struct RegistrationOptions {
  int64_t lease_ttl_s = 3;
  int64_t keepalive_interval_ms = 1000;
  // How long Start waits for a previous incarnation's key to expire.
  int64_t start_timeout_ms = 10000;
  std::function<void(const BrokerInfo& self)> on_registered;
  std::function<void()> on_lost;
};

// "/sluice/regions/<region>/brokers/"
std::string BrokersPrefix(const std::string& region);

// The brokers registered in `region` now, by id.
Result<std::vector<BrokerInfo>> ListBrokers(EtcdClient& etcd, const std::string& region);
// The same from key-values already read (a range under BrokersPrefix(region)); malformed
// registrations are logged and skipped.
std::vector<BrokerInfo> BrokersFromKvs(const std::string& region,
                                       const std::vector<EtcdKeyValue>& kvs);

class BrokerRegistration {
 public:
  // kAlreadyExists-style kFailedPrecondition if the id stays registered by another live broker
  // past start_timeout_ms; kUnavailable if etcd cannot be reached.
  static Result<std::unique_ptr<BrokerRegistration>> Start(EtcdClient& etcd, BrokerInfo self,
                                                           RegistrationOptions options = {});
  ~BrokerRegistration();  // Stop()

  void Stop();     // revokes the lease and stops the thread
  void Abandon();  // stops the thread, leaves the lease to expire (crash simulation)

  BrokerInfo self() const;
  int64_t lease() const { return lease_.load(); }
  bool registered() const { return registered_.load(); }

 private:
  BrokerRegistration(EtcdClient& etcd, BrokerInfo self, RegistrationOptions options);
  // One attempt: a lease and a create-if-absent put. kFailedPrecondition if the key exists.
  Status RegisterOnce();
  Status Register(int64_t timeout_ms);
  void Run();
  void Halt(bool revoke);

  EtcdClient& etcd_;
  const RegistrationOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  BrokerInfo self_;     // guarded by mu_
  bool stop_ = false;   // guarded by mu_
  std::atomic<int64_t> lease_{0};
  std::atomic<bool> registered_{false};
  std::thread thread_;
};

}  // namespace sluice::broker
