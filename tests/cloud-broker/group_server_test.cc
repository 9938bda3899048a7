// Consumer groups over the broker's HTTP API, in-process (Broker on a free port): two members
// get a disjoint, complete assignment; a member that stops heartbeating loses its partitions to
// the other; commit checks; committed offsets survive a broker restart.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <set>

#include "cloud-broker/groups/group_types.h"
#include "cloud-broker/server/broker.h"
#include "core/http.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

using TpSet = std::set<std::pair<std::string, int>>;

class GroupServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = sluice::testing::FreePort();
    ASSERT_NO_FATAL_FAILURE(StartBroker());
    ASSERT_TRUE(broker_->store().Create(TopicName("t"), 4).ok());
  }
  void StartBroker() {
    BrokerOptions o;
    o.broker_id = "eu-test-1";
    o.data_dir = dir_.path();
    o.region = RegionId("eu-central");
    o.countries = {CountryCode("DE")};
    o.http_port = port_;
    o.default_partitions = 4;
    auto b = Broker::Start(o);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    broker_ = std::move(b).value();
    client_ = std::make_unique<HttpClient>("http://127.0.0.1:" + std::to_string(port_));
  }
  HttpResponse Send(const std::string& method, const std::string& path,
                    const std::string& body = "") {
    auto r = client_->Send(method, path, body);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : HttpResponse{};
  }
  static rapidjson::Document Json(const HttpResponse& r) {
    rapidjson::Document d;
    d.Parse(r.body.c_str());
    EXPECT_FALSE(d.HasParseError()) << r.body;
    return d;
  }
  static std::string Error(const HttpResponse& r) {
    rapidjson::Document d = Json(r);
    return d.IsObject() && d.HasMember("error") ? d["error"].GetString() : "";
  }
  struct Member {
    std::string id;
    int64_t generation = 0;
    TpSet assignment;
  };
  Member Join(const std::string& id, int64_t timeout_ms) {
    std::string body = "{\"topics\":[\"t\"],\"strategy\":\"range\",\"session_timeout_ms\":" +
                       std::to_string(timeout_ms) +
                       (id.empty() ? "" : ",\"member_id\":\"" + id + "\"") + "}";
    HttpResponse r = Send("POST", "/v1/groups/g/join", body);
    EXPECT_EQ(r.status, 200) << r.body;
    rapidjson::Document d = Json(r);
    Member m;
    if (r.status != 200) return m;
    m.id = d["member_id"].GetString();
    m.generation = d["generation"].GetInt64();
    for (const auto& tp : d["assignment"].GetArray()) {
      m.assignment.insert({tp["topic"].GetString(), tp["partition"].GetInt()});
    }
    return m;
  }
  HttpResponse Heartbeat(const Member& m) {
    return Send(
        "POST", "/v1/groups/g/heartbeat",
        "{\"member_id\":\"" + m.id + "\",\"generation\":" + std::to_string(m.generation) + "}");
  }
  HttpResponse Commit(const Member& m, int64_t generation, int partition, int64_t offset) {
    return Send("POST", "/v1/groups/g/commit",
                "{\"member_id\":\"" + m.id + "\",\"generation\":" + std::to_string(generation) +
                    ",\"offsets\":[{\"topic\":\"t\",\"partition\":" + std::to_string(partition) +
                    ",\"offset\":" + std::to_string(offset) + "}]}");
  }

  sluice::testing::TempDir dir_;
  int port_ = 0;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(GroupServerTest, TwoMembersGetDisjointCompleteAssignment) {
  Member a = Join("", 10000);
  ASSERT_FALSE(a.id.empty());
  EXPECT_EQ(a.assignment.size(), 4u);
  Member b = Join("", 10000);
  EXPECT_EQ(b.generation, a.generation + 1);
  // a is told to re-join by its heartbeat.
  HttpResponse hb = Heartbeat(a);
  EXPECT_EQ(hb.status, 409);
  EXPECT_EQ(Error(hb), "rebalance_in_progress");
  a = Join(a.id, 10000);
  EXPECT_EQ(a.generation, b.generation);
  EXPECT_EQ(Heartbeat(a).status, 200);
  EXPECT_EQ(Heartbeat(b).status, 200);
  TpSet all = a.assignment;
  for (const auto& tp : b.assignment) {
    EXPECT_TRUE(all.insert(tp).second) << "partition assigned twice: " << tp.second;
  }
  EXPECT_EQ(all.size(), 4u);
  EXPECT_EQ(a.assignment.size(), 2u);
  rapidjson::Document d = Json(Send("GET", "/v1/groups/g"));
  EXPECT_STREQ(d["state"].GetString(), "stable");
  EXPECT_EQ(d["members"].Size(), 2u);
  EXPECT_EQ(d["generation"].GetInt64(), b.generation);
}

TEST_F(GroupServerTest, SilentMemberExpiresAndOtherGetsAllPartitions) {
  Member a = Join("", 10000);
  Member b = Join("", 300);  // b never heartbeats again
  a = Join(a.id, 10000);
  ASSERT_EQ(a.assignment.size(), 2u);
  // a keeps heartbeating; once b's session expires, a is told to re-join and gets everything.
  bool got_all = sluice::testing::WaitFor(
      [&] {
        HttpResponse r = Heartbeat(a);
        if (r.status == 409) a = Join(a.id, 10000);
        return a.assignment.size() == 4u;
      },
      20000, 50);
  EXPECT_TRUE(got_all);
  EXPECT_GT(a.generation, b.generation);
  HttpResponse hb = Heartbeat(b);
  EXPECT_EQ(hb.status, 404);
  EXPECT_EQ(Error(hb), "unknown_member_id");
  std::string metrics = Send("GET", "/metrics").body;
  EXPECT_GE(sluice::testing::MetricSum(metrics, "sluice_broker_group_members_expired_total"), 1);
}

// A member_id had no length limit (and was logged whole); a body nested a million deep was
// parsed recursively (a stack overflow in the broker); "t\u0000x" in a commit named topic "t".
TEST_F(GroupServerTest, HostileRequestsAre400) {
  struct Bad {
    std::string op;
    std::string body;
    const char* field;
  };
  const std::string huge(kMaxMemberIdBytes + 1, 'm');
  const std::string deep = std::string(1'000'000, '[') + std::string(1'000'000, ']');
  for (const Bad& b :
       {Bad{"join", R"({"topics":["t"],"member_id":")" + huge + R"("})", "member_id"},
        Bad{"join", R"({"topics":["t"],"member_id":"a\nb"})", "member_id"},
        Bad{"heartbeat", R"({"member_id":")" + huge + R"(","generation":1})", "member_id"},
        Bad{"leave", R"({"member_id":"a b"})", "member_id"},
        Bad{"commit", R"({"member_id":")" + huge + R"(","generation":1,"offsets":[]})",
            "member_id"},
        Bad{"join", R"({"topics":)" + deep + "}", ""}}) {
    HttpResponse r = Send("POST", "/v1/groups/g/" + b.op, b.body);
    EXPECT_EQ(r.status, 400) << b.op << ": " << r.body.substr(0, 200);
    if (r.status == 400 && *b.field != '\0') {
      EXPECT_STREQ(Json(r)["field"].GetString(), b.field) << r.body.substr(0, 200);
    }
  }
  Member a = Join(std::string(kMaxMemberIdBytes, 'm'), 10000);  // at the limit
  EXPECT_EQ(a.id, std::string(kMaxMemberIdBytes, 'm'));
  HttpResponse nul = Send("POST", "/v1/groups/g/commit",
                          "{\"member_id\":\"" + a.id + "\",\"generation\":" +
                              std::to_string(a.generation) +
                              ",\"offsets\":[{\"topic\":\"t\\u0000x\",\"partition\":0,"
                              "\"offset\":5}]}");
  EXPECT_EQ(nul.status, 400) << nul.body;
  HttpResponse offsets = Send("GET", "/v1/groups/g/offsets");
  EXPECT_EQ(offsets.body.find("\"offset\":5"), std::string::npos) << offsets.body;
}

TEST_F(GroupServerTest, CommitChecksAndOffsetsSurviveRestart) {
  Member a = Join("", 10000);
  Member b = Join("", 10000);
  a = Join(a.id, 10000);
  const int mine = a.assignment.begin()->second;
  const int theirs = b.assignment.begin()->second;
  EXPECT_EQ(Commit(a, a.generation, mine, 42).status, 200);
  HttpResponse stale = Commit(a, a.generation - 1, mine, 50);
  EXPECT_EQ(stale.status, 409);
  EXPECT_EQ(Error(stale), "illegal_generation");
  HttpResponse foreign = Commit(a, a.generation, theirs, 50);
  EXPECT_EQ(foreign.status, 409);
  EXPECT_EQ(Error(foreign), "partition_not_assigned");
  EXPECT_EQ(Send("POST", "/v1/groups/g/commit", "{not json").status, 400);
  EXPECT_EQ(Send("POST", "/v1/groups/bad%20id/join", "{\"topics\":[\"t\"]}").status, 400);
  EXPECT_EQ(Send("GET", "/v1/groups/g/join").status, 405);
  HttpResponse unknown_topic = Send("POST", "/v1/groups/g2/join", "{\"topics\":[\"nope\"]}");
  EXPECT_EQ(unknown_topic.status, 404);
  EXPECT_EQ(Error(unknown_topic), "unknown_topic");

  broker_->Stop();
  broker_.reset();
  StartBroker();
  rapidjson::Document d = Json(Send("GET", "/v1/groups/g/offsets?topic=t"));
  ASSERT_EQ(d["offsets"].Size(), 1u);
  EXPECT_EQ(d["offsets"][0]["partition"].GetInt(), mine);
  EXPECT_EQ(d["offsets"][0]["offset"].GetInt64(), 42);
  // Membership is not durable: the old member must re-join.
  EXPECT_EQ(Heartbeat(a).status, 404);
  rapidjson::Document g = Json(Send("GET", "/v1/groups/g"));
  EXPECT_STREQ(g["state"].GetString(), "empty");
  EXPECT_EQ(Send("GET", "/v1/groups/never").status, 404);
}

}  // namespace
}  // namespace sluice::broker
