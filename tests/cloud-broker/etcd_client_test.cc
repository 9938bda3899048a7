// EtcdClient and BrokerRegistration against a real etcd (Debian's etcd-server) on free ports.
#include "cloud-broker/replication/etcd_client.h"

#include <gtest/gtest.h>

#include <atomic>

#include "cloud-broker/replication/broker_registry.h"
#include "tests/common/etcd.h"
#include "tests/common/tcp_proxy.h"

namespace sluice::broker {
namespace {

using sluice::testing::EtcdCluster;
using sluice::testing::TempDir;
using sluice::testing::WaitFor;

class EtcdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    etcd_ = EtcdCluster::Start(dir_);
    ASSERT_NE(etcd_, nullptr) << "etcd did not start (scripts/setup installs etcd-server)";
    client_ = std::move(EtcdClient::Create(etcd_->endpoints()).value());
  }
  TempDir dir_;
  std::unique_ptr<EtcdCluster> etcd_;
  std::unique_ptr<EtcdClient> client_;
};

TEST_F(EtcdTest, PutGetPrefixDeleteWithBinaryKeysAndValues) {
  const std::string value("a\0b\xff", 4);
  Result<int64_t> rev = client_->Put("/t/a", value);
  ASSERT_TRUE(rev.ok()) << rev.status().ToString();
  ASSERT_TRUE(client_->Put("/t/b", "2").ok());
  ASSERT_TRUE(client_->Put("/u/c", "3").ok());
  auto a = client_->Get("/t/a");
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->value, value);
  EXPECT_EQ((*a)->create_revision, *rev);
  auto none = client_->Get("/t/zz");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  int64_t revision = 0;
  auto t = client_->GetPrefix("/t/", &revision);
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->size(), 2u);
  EXPECT_EQ((*t)[1].key, "/t/b");
  EXPECT_GE(revision, *rev + 2);
  auto deleted = client_->Delete("/t/", true);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 2);
  EXPECT_TRUE(client_->GetPrefix("/t/")->empty());
  EXPECT_EQ(client_->GetPrefix("/u/")->size(), 1u);
}

TEST_F(EtcdTest, TransactionsCompareAndSwap) {
  auto created = client_->Txn({EtcdCompare::Absent("/p/state")},
                              {EtcdOp::Put("/p/state", "v1")}, {EtcdOp::Get("/p/state")});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_TRUE(created->succeeded);
  auto again = client_->Txn({EtcdCompare::Absent("/p/state")},
                            {EtcdOp::Put("/p/state", "lost")}, {EtcdOp::Get("/p/state")});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->succeeded);
  ASSERT_EQ(again->ranges.size(), 1u);
  ASSERT_EQ(again->ranges[0].size(), 1u);
  EXPECT_EQ(again->ranges[0][0].value, "v1");
  const int64_t mod = again->ranges[0][0].mod_revision;
  // Two writers read the same revision: only the first swap wins.
  auto first = client_->Txn({EtcdCompare::ModRevisionIs("/p/state", mod)},
                            {EtcdOp::Put("/p/state", "v2")});
  auto second = client_->Txn({EtcdCompare::ModRevisionIs("/p/state", mod)},
                             {EtcdOp::Put("/p/state", "v2'")});
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_TRUE(first->succeeded);
  EXPECT_FALSE(second->succeeded);
  EXPECT_EQ((*client_->Get("/p/state"))->value, "v2");
}

TEST_F(EtcdTest, LeasesExpireUnlessKeptAliveAndRevokeAtOnce) {
  auto kept = client_->GrantLease(2);
  auto left = client_->GrantLease(2);
  ASSERT_TRUE(kept.ok() && left.ok());
  ASSERT_TRUE(client_->Put("/l/kept", "x", *kept).ok());
  ASSERT_TRUE(client_->Put("/l/left", "x", *left).ok());
  // Keep one alive past the other's expiry.
  ASSERT_TRUE(WaitFor([&] {
    EXPECT_TRUE(client_->KeepAlive(*kept).ok());
    return !client_->Get("/l/left")->has_value();
  }, 10000, 300));
  EXPECT_TRUE(client_->Get("/l/kept")->has_value());
  EXPECT_EQ(client_->KeepAlive(*left).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(client_->RevokeLease(*kept).ok());
  EXPECT_FALSE(client_->Get("/l/kept")->has_value());
}

TEST_F(EtcdTest, ElectionHasOneLeaderAndTheNextTakesOverOnResign) {
  auto l1 = client_->GrantLease(10);
  auto l2 = client_->GrantLease(10);
  ASSERT_TRUE(l1.ok() && l2.ok());
  EXPECT_FALSE(client_->Leader("ctl")->has_value());
  auto first = client_->Campaign("ctl", *l1, "b1");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto leader = client_->Leader("ctl");
  ASSERT_TRUE(leader.ok() && leader->has_value());
  EXPECT_EQ((*leader)->value, "b1");
  // The second candidate waits until the first resigns.
  std::atomic<bool> elected{false};
  std::thread second([&] {
    auto r = client_->Campaign("ctl", *l2, "b2");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    elected = true;
  });
  ASSERT_TRUE(WaitFor([&] { return client_->GetPrefix("ctl/")->size() == 2u; }, 10000));
  EXPECT_FALSE(elected.load());
  ASSERT_TRUE(client_->Resign("ctl", *first).ok());
  EXPECT_TRUE(WaitFor([&] { return elected.load(); }, 10000));
  second.join();
  EXPECT_EQ((*client_->Leader("ctl"))->value, "b2");
}

TEST(EtcdClusterTest, ClientMovesOnToALiveMemberWhenOneDies) {
  TempDir dir;
  auto etcd = EtcdCluster::Start(dir, 3);
  ASSERT_NE(etcd, nullptr);
  EtcdClientOptions o;
  o.request_timeout_ms = 2000;
  auto client = std::move(EtcdClient::Create(etcd->endpoints(), o).value());
  ASSERT_TRUE(client->Put("/k", "1").ok());
  etcd->Kill(0);  // the first endpoint the client tries
  // If the killed member led, the others elect a leader first (kUnavailable meanwhile: retry).
  Status last;
  ASSERT_TRUE(WaitFor([&] {
    Result<int64_t> put = client->Put("/k", "2");
    last = put.status();
    return put.ok();
  }, 10000, 100)) << last.ToString();
  EXPECT_EQ((*client->Get("/k"))->value, "2");
}

TEST_F(EtcdTest, RegistrationListsBrokersAndARestartIsANewIncarnation) {
  RegistrationOptions o;
  o.lease_ttl_s = 2;
  o.keepalive_interval_ms = 300;
  auto b1 = BrokerRegistration::Start(*client_, {"b1", "eu", "http://127.0.0.1:1", 0}, o);
  auto b2 = BrokerRegistration::Start(*client_, {"b2", "eu", "http://127.0.0.1:2", 0}, o);
  ASSERT_TRUE(b1.ok() && b2.ok());
  auto listed = ListBrokers(*client_, "eu");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[1].url, "http://127.0.0.1:2");
  const int64_t first_incarnation = (*b1)->self().incarnation;
  EXPECT_EQ((*listed)[0].incarnation, first_incarnation);
  EXPECT_TRUE(ListBrokers(*client_, "us")->empty());

  // Kept alive well past its TTL.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_EQ(ListBrokers(*client_, "eu")->size(), 2u);

  // A second broker with b1's id is refused while b1 lives.
  o.start_timeout_ms = 500;
  auto dup = BrokerRegistration::Start(*client_, {"b1", "eu", "http://127.0.0.1:9", 0}, o);
  EXPECT_EQ(dup.status().code(), StatusCode::kFailedPrecondition);

  // A crash: the key stays until the lease expires, then the restarted broker registers anew.
  (*b1)->Abandon();
  o.start_timeout_ms = 10000;
  auto restarted = BrokerRegistration::Start(*client_, {"b1", "eu", "http://127.0.0.1:1", 0}, o);
  ASSERT_TRUE(restarted.ok()) << restarted.status().ToString();
  EXPECT_GT((*restarted)->self().incarnation, first_incarnation);

  // A clean stop is seen at once.
  (*b2)->Stop();
  listed = ListBrokers(*client_, "eu");
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, "b1");
}

TEST_F(EtcdTest, LostLeaseIsReportedAndTheBrokerRegistersAgain) {
  RegistrationOptions o;
  o.lease_ttl_s = 2;
  o.keepalive_interval_ms = 200;
  std::atomic<int> lost{0};
  std::atomic<int> registered{0};
  o.on_lost = [&] { lost++; };
  o.on_registered = [&](const BrokerInfo&) { registered++; };
  auto b = BrokerRegistration::Start(*client_, {"b1", "eu", "http://x", 0}, o);
  ASSERT_TRUE(b.ok());
  const int64_t before = (*b)->self().incarnation;
  // Someone (an operator, a partition that outlived the TTL) ends the lease.
  ASSERT_TRUE(client_->RevokeLease((*b)->lease()).ok());
  ASSERT_TRUE(WaitFor([&] { return registered.load() == 2; }, 10000));
  EXPECT_EQ(lost.load(), 1);
  EXPECT_GT((*b)->self().incarnation, before);
  EXPECT_EQ(ListBrokers(*client_, "eu")->size(), 1u);
}

// A broker cut off from etcd (its keep-alive requests hang, as on a network partition, for the
// client's 5 s request timeout, longer than the 2 s TTL) must stop acting on its lease before
// anyone else can see it gone: by the time the key disappears for another client, on_lost ran.
// Break tried: the keep-alive called synchronously (the loop waits out the hung request) -> the
// key is gone while on_lost has not run.
TEST_F(EtcdTest, ARegistrationCutOffFromEtcdIsLostBeforeOthersSeeItExpire) {
  const std::string endpoint = etcd_->endpoints().front();
  auto proxy = sluice::testing::TcpProxy::Start(
      std::stoi(endpoint.substr(endpoint.rfind(':') + 1)));
  ASSERT_NE(proxy, nullptr);
  EtcdClientOptions eo;
  eo.request_timeout_ms = 5000;
  auto via_proxy = EtcdClient::Create({"http://127.0.0.1:" + std::to_string(proxy->port())}, eo);
  ASSERT_TRUE(via_proxy.ok());
  RegistrationOptions o;
  o.lease_ttl_s = 2;
  o.keepalive_interval_ms = 200;
  std::atomic<bool> lost{false};
  o.on_lost = [&] { lost = true; };
  auto b = BrokerRegistration::Start(**via_proxy, {"b1", "eu", "http://x", 0}, o);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_EQ(ListBrokers(*client_, "eu")->size(), 1u);
  proxy->Cut();
  bool lost_when_gone = false;
  ASSERT_TRUE(WaitFor(
      [&] {
        const bool lost_before = lost.load();  // read before looking: never later than the look
        auto brokers = ListBrokers(*client_, "eu");
        if (brokers.ok() && brokers->empty()) {
          lost_when_gone = lost_before;
          return true;
        }
        return false;
      },
      15000, 20))
      << "the lease never expired";
  EXPECT_TRUE(lost_when_gone) << "etcd expired the lease while the broker still acted on it";
  proxy->Heal();
  (*b)->Abandon();
}

}  // namespace
}  // namespace sluice::broker
