#include "cloud-broker/replication/controller.h"

#include <chrono>
#include <cstdio>
#include <set>
#include <vector>

#include "cloud-broker/replication/broker_registry.h"
#include "cloud-broker/replication/leader_election.h"
#include "cloud-broker/replication/partition_state.h"
#include "cloud-broker/replication/partition_state_store.h"
#include "core/logging.h"
#include "core/thread_name.h"

namespace sluice::broker {
namespace {

constexpr const char* kComponent = "controller";
constexpr int64_t kWarnEveryMs = 5000;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// etcd's election keys are "<name>/<lease in lower-case hex>" (concurrency.Election.Campaign).
std::string CandidateKey(const std::string& election, int64_t lease) {
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%llx", static_cast<unsigned long long>(lease));
  return election + "/" + hex;
}

std::string Ids(const std::vector<std::string>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    out += (i == 0 ? "" : ",") + ids[i];
  }
  return out + "]";
}

}  // namespace

Result<std::unique_ptr<Controller>> Controller::Start(EtcdClient& etcd, ControllerOptions options,
                                                      int64_t lease) {
  if (options.region.empty() || options.broker_id.empty() || options.poll_interval_ms < 1) {
    return Status::InvalidArgument("controller: region and broker id must be set and the poll "
                                   "interval at least 1 ms");
  }
  EtcdClientOptions campaign_options = etcd.options();
  campaign_options.campaign_timeout_ms = options.campaign_timeout_ms;
  Result<std::unique_ptr<EtcdClient>> campaign_etcd =
      EtcdClient::Create(etcd.endpoints(), campaign_options);
  if (!campaign_etcd.ok()) {
    return campaign_etcd.status();
  }
  std::unique_ptr<Controller> c(
      new Controller(etcd, std::move(campaign_etcd).value(), std::move(options), lease));
  c->thread_ = std::thread([p = c.get()] {
    SetCurrentThreadName("controller");
    p->Run();
  });
  return c;
}

Controller::Controller(EtcdClient& etcd, std::unique_ptr<EtcdClient> campaign_etcd,
                       ControllerOptions options, int64_t lease)
    : etcd_(etcd),
      campaign_etcd_(std::move(campaign_etcd)),
      options_(std::move(options)),
      election_(ControllerElection(options_.region)),
      lease_(lease) {}

Controller::~Controller() { Stop(); }

void Controller::SetLease(int64_t lease) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (lease == lease_) {
      return;
    }
    lease_ = lease;
    ++generation_;
    // Stop acting now; the thread notices the new generation before its next write.
    is_controller_ = false;
    epoch_ = 0;
  }
  cv_.notify_all();
}

void Controller::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

bool Controller::Current(uint64_t generation) {
  std::lock_guard<std::mutex> lock(mu_);
  return !stop_ && generation_ == generation;
}

bool Controller::Wait(int64_t ms, uint64_t generation) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms),
               [&] { return stop_ || generation_ != generation; });
  return !stop_ && generation_ == generation;
}

void Controller::Warn(const std::string& message) {
  const int64_t now = NowMs();
  if (now - last_warn_ms_ >= kWarnEveryMs) {
    last_warn_ms_ = now;
    LogWarn(kComponent, options_.broker_id + ": " + message);
  }
}

void Controller::Run() {
  int64_t campaigned_with = 0;  // the last lease that may hold a candidate key
  while (true) {
    int64_t lease = 0;
    uint64_t generation = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || lease_ != 0; });
      if (stop_) {
        break;
      }
      lease = lease_;
      generation = generation_;
    }
    campaigned_with = lease;
    const int64_t started = NowMs();
    Result<EtcdKeyValue> won = campaign_etcd_->Campaign(election_, lease, options_.broker_id);
    if (!won.ok()) {
      // A campaign that waited its whole timeout is simply renewed; a quick failure (a dead
      // lease, etcd down) waits a poll interval first.
      if (NowMs() - started < options_.campaign_timeout_ms / 2) {
        Warn("campaign failed: " + won.status().ToString());
        Wait(options_.poll_interval_ms, generation);
      }
      continue;
    }
    // A campaign request that timed out is cancelled by etcd by deleting the candidate key,
    // which the next campaign with the same lease may have reused: confirm before acting.
    Result<std::optional<EtcdKeyValue>> leader = etcd_.Leader(election_);
    if (!leader.ok() || !leader->has_value() || (*leader)->key != won->key ||
        (*leader)->create_revision != won->create_revision) {
      continue;
    }
    Term term{*won, lease, generation, {}};
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_ || generation_ != generation) {
        continue;
      }
      is_controller_ = true;
      epoch_ = won->create_revision;
    }
    elections_won_++;
    LogInfo(kComponent, options_.broker_id + " is the controller of region " + options_.region +
                            " (epoch " + std::to_string(won->create_revision) + ")");
    Lead(term);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (generation_ == generation) {
        is_controller_ = false;
        epoch_ = 0;
      }
    }
    step_downs_++;
    LogInfo(kComponent, options_.broker_id + " is no longer the controller (epoch " +
                            std::to_string(won->create_revision) + ")");
  }
  if (campaigned_with != 0) {
    // Resign, or withdraw the candidacy, so another broker takes over without waiting for the
    // lease to expire. The key name holds our lease id: nobody else's key is touched.
    Result<int64_t> deleted = etcd_.Delete(CandidateKey(election_, campaigned_with));
    if (!deleted.ok()) {
      LogWarn(kComponent, "could not resign (the lease's end will): " +
                              deleted.status().ToString());
    }
  }
}

void Controller::Lead(Term& term) {
  while (Current(term.generation)) {
    Round round = Reconcile(term);
    if (round == Round::kDeposed) {
      return;
    }
    if (!Wait(options_.poll_interval_ms, term.generation)) {
      return;
    }
  }
}

Controller::Round Controller::Reconcile(Term& term) {
  const int64_t epoch = term.leader_key.create_revision;
  const EtcdCompare guard = EtcdCompare::CreateRevisionIs(term.leader_key.key, epoch);
  // One snapshot of brokers and partitions, taken only while we are still the controller.
  Result<EtcdTxnResult> snap =
      etcd_.Txn({guard}, {EtcdOp::Get(BrokersPrefix(options_.region), true),
                          EtcdOp::Get(PartitionsPrefix(options_.region), true)});
  if (!snap.ok()) {
    Warn("could not read the region's state: " + snap.status().ToString());
    return Round::kIncomplete;
  }
  if (!snap->succeeded) {
    return Round::kDeposed;
  }
  if (snap->ranges.size() != 2) {
    Warn("etcd answered " + std::to_string(snap->ranges.size()) + " ranges, not 2");
    return Round::kIncomplete;
  }
  std::map<std::string, int64_t> registered;
  std::set<std::string> live;
  for (const BrokerInfo& b : BrokersFromKvs(options_.region, snap->ranges[0])) {
    registered[b.id] = b.incarnation;
    auto seen = term.seen.find(b.id);
    if (seen == term.seen.end() || seen->second == b.incarnation) {
      live.insert(b.id);
    }
  }
  Round result = Round::kComplete;
  for (const VersionedPartitionState& p : PartitionStatesFromKvs(options_.region,
                                                                 snap->ranges[1])) {
    std::optional<PartitionState> next =
        ReconcilePartition(p.state, live, epoch, options_.unclean_leader_election, registered);
    if (!next.has_value()) {
      continue;
    }
    if (!Current(term.generation)) {
      return Round::kIncomplete;  // Lead returns: the lease changed or Stop was called
    }
    Result<CasOutcome> cas = CompareAndSwap(etcd_, options_.region, p.topic, p.partition,
                                            p.mod_revision, *next, {guard});
    const std::string name = p.topic + "/" + std::to_string(p.partition);
    if (!cas.ok()) {
      Warn("could not write " + name + " (next poll retries): " + cas.status().ToString());
      result = Round::kIncomplete;
    } else if (*cas == CasOutcome::kGuardFailed) {
      return Round::kDeposed;
    } else if (*cas == CasOutcome::kStale) {
      result = Round::kIncomplete;  // changed under us: the next poll decides again
    } else {
      partitions_changed_++;
      LogInfo(kComponent, "partition " + name + ": leader '" + p.state.leader + "' -> '" +
                              next->leader + "' (epoch " + std::to_string(next->leader_epoch) +
                              "), isr " + Ids(p.state.isr) + " -> " + Ids(next->isr));
    }
  }
  // A restart is forgotten only once every partition was handled for it.
  if (result == Round::kComplete) {
    term.seen = std::move(registered);
    complete_rounds_++;
  }
  return result;
}

}  // namespace sluice::broker
