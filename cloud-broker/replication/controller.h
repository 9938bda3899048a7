// Controller: the region's controller, Kafka's ZooKeeper-era design with etcd as the control
// plane. Every broker process runs one; they campaign for ControllerElection(region) with the
// broker's registration lease, and the elected one (its controller epoch = its leader key's
// create revision) reconciles the region's partition states every poll_interval_ms:
// - it reads the registered brokers and every partition state in one transaction guarded by its
//   leader key, so it acts only on a snapshot taken while it was still controller;
// - a broker is failed if it is not registered, or its incarnation differs from the one this
//   controller saw before (a restart lost its in-memory state); ReconcilePartition
//   (leader_election.h) decides each partition's new leader and ISR;
// - every write is a CompareAndSwap on the partition's mod revision that also compares the
//   controller's own leader key's create revision, so a deposed controller (paused, partitioned,
//   its lease expired) changes nothing. A swap that finds the partition changed is retried on the
//   next poll with fresh state; one that finds the leader key gone makes it step down and
//   campaign again.
// Known gap (as in Kafka): a controller that takes over cannot tell that a broker restarted
// before its first poll; it learns incarnations from that poll on.
// Lease: SetLease gives the lease to campaign with (the registration's, after each
// registration); SetLease(0) (from the registration's on_lost) makes it stop acting at once and
// wait for the next lease. Stop resigns, so another broker takes over without waiting for a TTL.
// Thread-safety: thread-safe. One thread of its own (named "controller").
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "cloud-broker/replication/etcd_client.h"
#include "core/status.h"

namespace sluice::broker {

struct ControllerOptions {
  std::string region;
  std::string broker_id;  // the candidate's value in the election
  int64_t poll_interval_ms = 200;
  // Each Campaign request lasts at most this long, then the thread checks for Stop and campaigns
  // again: Stop returns within about this long.
  int64_t campaign_timeout_ms = 1000;
  // Elect a live replica outside the ISR when no ISR member is live (may lose committed records).
  bool unclean_leader_election = false;
};

class Controller {
 public:
  // Starts the thread; it campaigns once it has a lease (`lease`, or a later SetLease).
  // kInvalidArgument for an empty region or broker id, or a poll interval < 1.
  static Result<std::unique_ptr<Controller>> Start(EtcdClient& etcd, ControllerOptions options,
                                                   int64_t lease = 0);
  ~Controller();  // Stop()

  // The lease to campaign with; 0: none (the registration was lost). A different lease ends the
  // current term at once: after SetLease returns the controller starts no new write (one already
  // sent fails its leader-key guard once the old lease is gone).
  void SetLease(int64_t lease);
  // Resigns if controller and stops the thread. Idempotent.
  void Stop();

  bool is_controller() const { return is_controller_.load(); }
  // The controller epoch while controller, else 0.
  int64_t epoch() const { return epoch_.load(); }
  int64_t elections_won() const { return elections_won_.load(); }
  int64_t step_downs() const { return step_downs_.load(); }
  int64_t partitions_changed() const { return partitions_changed_.load(); }
  // Reconciliation rounds that handled every partition (for tests: "a full poll has passed").
  int64_t complete_rounds() const { return complete_rounds_.load(); }

 private:
  struct Term {
    EtcdKeyValue leader_key;
    int64_t lease = 0;
    uint64_t generation = 0;  // generation_ when elected
    // Incarnations seen at the last complete round, by broker id.
    std::map<std::string, int64_t> seen;
  };
  enum class Round { kComplete, kIncomplete, kDeposed };

  Controller(EtcdClient& etcd, std::unique_ptr<EtcdClient> campaign_etcd,
             ControllerOptions options, int64_t lease);
  void Run();
  // Polls and reconciles until deposed, stopped or the lease changes.
  void Lead(Term& term);
  Round Reconcile(Term& term);
  // True while `generation` is current and Stop was not called.
  bool Current(uint64_t generation);
  // Waits up to ms or until Stop or a lease change; false if either happened.
  bool Wait(int64_t ms, uint64_t generation);
  void Warn(const std::string& message);

  EtcdClient& etcd_;
  const std::unique_ptr<EtcdClient> campaign_etcd_;  // short campaign timeout
  const ControllerOptions options_;
  const std::string election_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;        // guarded by mu_
  int64_t lease_ = 0;        // guarded by mu_
  uint64_t generation_ = 0;  // guarded by mu_: +1 at every lease change
  int64_t last_warn_ms_ = 0;  // the controller thread's only
  std::atomic<bool> is_controller_{false};
  std::atomic<int64_t> epoch_{0};
  std::atomic<int64_t> elections_won_{0};
  std::atomic<int64_t> step_downs_{0};
  std::atomic<int64_t> partitions_changed_{0};
  std::atomic<int64_t> complete_rounds_{0};
  std::thread thread_;
};

}  // namespace sluice::broker
