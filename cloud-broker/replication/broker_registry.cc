#include "cloud-broker/replication/broker_registry.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <future>

#include "core/logging.h"
#include "core/thread_name.h"

namespace sluice::broker {
namespace {

constexpr const char* kComponent = "registry";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string InfoJson(const BrokerInfo& b) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  for (const auto& [k, v] : {std::pair{"id", &b.id}, {"region", &b.region}, {"url", &b.url}}) {
    w.Key(k);
    w.String(v->c_str(), static_cast<rapidjson::SizeType>(v->size()));
  }
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

std::string KeyOf(const BrokerInfo& b) { return BrokersPrefix(b.region) + b.id; }

}  // namespace

std::string BrokersPrefix(const std::string& region) {
  return "/sluice/regions/" + region + "/brokers/";
}

Result<std::vector<BrokerInfo>> ListBrokers(EtcdClient& etcd, const std::string& region) {
  Result<std::vector<EtcdKeyValue>> kvs = etcd.GetPrefix(BrokersPrefix(region));
  if (!kvs.ok()) {
    return kvs.status();
  }
  return BrokersFromKvs(region, *kvs);
}

std::vector<BrokerInfo> BrokersFromKvs(const std::string& region,
                                       const std::vector<EtcdKeyValue>& kvs) {
  std::vector<BrokerInfo> out;
  for (const EtcdKeyValue& kv : kvs) {
    rapidjson::Document d;
    d.Parse(kv.value.c_str(), kv.value.size());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember("id") || !d["id"].IsString() ||
        !d.HasMember("url") || !d["url"].IsString()) {
      LogWarn(kComponent, "ignoring a malformed registration " + kv.key);
      continue;
    }
    if (d.HasMember("region") &&
        (!d["region"].IsString() || d["region"].GetString() != region)) {
      // Registered under this region's prefix but configured for another region: never a
      // replica or leader here (its data would live outside the region it belongs to).
      LogError(kComponent, "ignoring registration " + kv.key + ": it names region " +
                               (d["region"].IsString() ? d["region"].GetString()
                                                       : std::string("(not a string)")) +
                               ", not " + region);
      continue;
    }
    BrokerInfo b;
    b.id = d["id"].GetString();
    b.region = region;
    b.url = d["url"].GetString();
    b.incarnation = kv.create_revision;
    out.push_back(std::move(b));
  }
  return out;
}

Result<std::unique_ptr<BrokerRegistration>> BrokerRegistration::Start(EtcdClient& etcd,
                                                                      BrokerInfo self,
                                                                      RegistrationOptions options) {
  std::unique_ptr<BrokerRegistration> r(
      new BrokerRegistration(etcd, std::move(self), std::move(options)));
  Status st = r->Register(r->options_.start_timeout_ms);
  if (!st.ok()) {
    return st;
  }
  r->thread_ = std::thread([p = r.get()] {
    SetCurrentThreadName("registry");
    p->Run();
  });
  return r;
}

BrokerRegistration::BrokerRegistration(EtcdClient& etcd, BrokerInfo self,
                                       RegistrationOptions options)
    : etcd_(etcd), options_(std::move(options)), self_(std::move(self)) {}

BrokerRegistration::~BrokerRegistration() { Stop(); }

BrokerInfo BrokerRegistration::self() const {
  std::lock_guard<std::mutex> lock(mu_);
  return self_;
}

Status BrokerRegistration::RegisterOnce() {
  Result<int64_t> lease = etcd_.GrantLease(options_.lease_ttl_s);
  if (!lease.ok()) {
    return lease.status();
  }
  BrokerInfo info = self();
  const std::string key = KeyOf(info);
  Result<EtcdTxnResult> txn = etcd_.Txn({EtcdCompare::Absent(key)},
                                        {EtcdOp::Put(key, InfoJson(info), *lease)},
                                        {EtcdOp::Get(key)});
  if (!txn.ok()) {
    (void)etcd_.RevokeLease(*lease);  // best effort: it expires anyway
    return txn.status();
  }
  if (!txn->succeeded) {
    (void)etcd_.RevokeLease(*lease);
    std::string holder;
    if (!txn->ranges.empty() && !txn->ranges[0].empty()) {
      holder = txn->ranges[0][0].value;
    }
    return Status::FailedPrecondition("broker id " + info.id + " is registered already (" +
                                      holder + ")");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    self_.incarnation = txn->revision;
    info = self_;
  }
  lease_ = *lease;
  registered_ = true;
  LogInfo(kComponent, "registered broker " + info.id + " in region " + info.region +
                          " (incarnation " + std::to_string(info.incarnation) + ", url " +
                          info.url + ")");
  if (options_.on_registered) {
    options_.on_registered(info);
  }
  return Status::Ok();
}

Status BrokerRegistration::Register(int64_t timeout_ms) {
  const int64_t deadline = NowMs() + timeout_ms;
  Status last;
  while (true) {
    last = RegisterOnce();
    if (last.ok()) {
      return last;
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (stop_ || NowMs() >= deadline) {
      return last;
    }
    // A previous incarnation's key expires within its TTL; etcd may come back.
    cv_.wait_for(lock, std::chrono::milliseconds(250), [&] { return stop_; });
  }
}

void BrokerRegistration::Run() {
  const int64_t ttl_ms = options_.lease_ttl_s * 1000;
  // etcd may expire the lease a little before TTL after our last keep-alive was sent (it counts
  // from its receipt and revokes expired leases every 500 ms): stop acting on it this much earlier.
  const int64_t margin_ms = std::min<int64_t>(500, ttl_ms / 4);
  int64_t valid_until = NowMs() + ttl_ms - margin_ms;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      const int64_t wait = std::max<int64_t>(
          0, std::min(options_.keepalive_interval_ms, valid_until - NowMs()));
      if (cv_.wait_for(lock, std::chrono::milliseconds(wait), [&] { return stop_; })) {
        return;
      }
    }
    Status lost = Status::Unavailable("no keep-alive answered within the lease's TTL");
    if (NowMs() < valid_until) {
      const int64_t sent = NowMs();
      const int64_t lease = lease_.load();
      // Asynchronous, so a keep-alive stuck on an unreachable etcd (up to the client's request
      // timeout, longer than the TTL) cannot keep this broker acting on an expired lease.
      std::future<Result<int64_t>> pending =
          std::async(std::launch::async, [this, lease] { return etcd_.KeepAlive(lease); });
      if (pending.wait_for(std::chrono::milliseconds(std::max<int64_t>(
              0, valid_until - NowMs()))) == std::future_status::ready) {
        Result<int64_t> ttl = pending.get();
        if (ttl.ok()) {
          valid_until = sent + std::min(ttl_ms, *ttl * 1000) - margin_ms;
          continue;
        }
        if (ttl.status().code() != StatusCode::kNotFound && NowMs() < valid_until) {
          LogWarn(kComponent, "keep-alive failed (retrying): " + ttl.status().ToString());
          continue;
        }
        lost = ttl.status();
      } else {
        // Acting on the lease stops now; the request still in flight finishes first.
        LogWarn(kComponent, "registration lost: " + lost.ToString());
        registered_ = false;
        if (options_.on_lost) {
          options_.on_lost();
        }
        (void)pending.get();
        lost = Status::Ok();  // on_lost ran already
      }
    }
    if (!lost.ok()) {
      LogWarn(kComponent, "registration lost: " + lost.ToString());
      registered_ = false;
      if (options_.on_lost) {
        options_.on_lost();
      }
    }
    // Register again as a new incarnation, for as long as it takes.
    while (!Register(options_.start_timeout_ms).ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) {
        return;
      }
    }
    valid_until = NowMs() + ttl_ms - margin_ms;
  }
}

void BrokerRegistration::Halt(bool revoke) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ && !thread_.joinable()) {
      return;
    }
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
  if (revoke && registered_.exchange(false)) {
    Status st = etcd_.RevokeLease(lease_.load());
    if (!st.ok()) {
      LogWarn(kComponent, "could not revoke the registration's lease (it expires): " +
                              st.ToString());
    }
  }
  registered_ = false;
}

void BrokerRegistration::Stop() { Halt(true); }

void BrokerRegistration::Abandon() { Halt(false); }

}  // namespace sluice::broker
