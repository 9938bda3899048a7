// The replication wire protocol: round trips, and every malformed or oversized input refused
// with the field named (requests) or as corruption (responses), never a crash or a huge
// allocation.
#include "cloud-broker/replication/replica_fetch.h"

#include <gtest/gtest.h>

namespace sluice::broker {
namespace {

TEST(ReplicaFetchTest, RequestAndResponseRoundTrip) {
  ReplicaFetchRequest req;
  req.replica_id = "b2";
  req.incarnation = 17;
  req.max_bytes = 4096;
  req.wait_ms = 500;
  req.partitions = {{"sensors", 0, 42, 3}, {"sensors", 5, 0, 0}};
  auto back = DecodeFetchRequest(EncodeFetchRequest(req));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->replica_id, "b2");
  EXPECT_EQ(back->incarnation, 17);
  ASSERT_EQ(back->partitions.size(), 2u);
  EXPECT_EQ(back->partitions[0].fetch_offset, 42);
  EXPECT_EQ(back->partitions[0].leader_epoch, 3);
  EXPECT_EQ(back->partitions[1].partition, 5);

  ReplicaFetchResponse resp;
  resp.partitions.push_back({"sensors", 0, "", 40, 50, 0, std::string("\x00\x01\xff", 3)});
  resp.partitions.push_back({"sensors", 5, "not_leader", 0, 0, 0, ""});
  resp.partitions.push_back({"other", 1, "", 7, 9, 2, "batch-bytes"});
  auto r = DecodeFetchResponse(EncodeFetchResponse(resp));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->partitions.size(), 3u);
  EXPECT_EQ(r->partitions[0].records, std::string("\x00\x01\xff", 3));
  EXPECT_EQ(r->partitions[0].high_watermark, 40);
  EXPECT_EQ(r->partitions[1].error, "not_leader");
  EXPECT_EQ(r->partitions[2].records, "batch-bytes");
  EXPECT_EQ(r->partitions[2].log_start_offset, 2);
}

TEST(ReplicaFetchTest, MalformedRequestsNameTheField) {
  auto bad = [](const std::string& json) { return DecodeFetchRequest(json).status(); };
  EXPECT_NE(bad("[]").message().find("not a JSON object"), std::string::npos);
  EXPECT_NE(bad("{\"incarnation\":1,\"max_bytes\":1,\"partitions\":[]}").message().find("replica"),
            std::string::npos);
  EXPECT_NE(bad("{\"replica\":\"b\",\"incarnation\":1,\"max_bytes\":999999999999,"
                "\"partitions\":[]}")
                .message()
                .find("max_bytes"),
            std::string::npos);
  EXPECT_NE(bad("{\"replica\":\"b\",\"incarnation\":1,\"max_bytes\":10,\"partitions\":"
                "[{\"topic\":\"t\",\"partition\":-1,\"fetch_offset\":0,\"leader_epoch\":0}]}")
                .message()
                .find("partitions[0].partition"),
            std::string::npos);
  std::string many = "{\"replica\":\"b\",\"incarnation\":1,\"max_bytes\":10,\"partitions\":[";
  for (size_t i = 0; i <= kMaxReplicaFetchPartitions; ++i) {
    many += std::string(i ? "," : "") + "{}";
  }
  EXPECT_FALSE(DecodeFetchRequest(many + "]}").ok());
}

TEST(ReplicaFetchTest, ResponsesThatDoNotAddUpAreCorrupt) {
  ReplicaFetchResponse resp;
  resp.partitions.push_back({"t", 0, "", 1, 1, 0, "abcd"});
  const std::string good = EncodeFetchResponse(resp);
  EXPECT_EQ(DecodeFetchResponse(good.substr(0, good.size() - 1)).status().code(),
            StatusCode::kCorruption);  // bytes past the body
  EXPECT_EQ(DecodeFetchResponse(good + "x").status().code(), StatusCode::kCorruption);
  EXPECT_FALSE(DecodeFetchResponse("").ok());
  EXPECT_FALSE(DecodeFetchResponse(std::string("\xff\xff\xff\xff{}", 6)).ok());
  // A partition that is not an object (replica_fetch_fuzz found HasMember called on a number:
  // undefined behaviour): corrupt, and nothing looked up in it.
  for (const std::string header : {"{\"partitions\":[2222222222]}", "{\"partitions\":[\"t\"]}",
                                   "{\"partitions\":[[]]}", "{\"partitions\":[null]}"}) {
    const std::string body = std::string(3, '\0') + static_cast<char>(header.size()) + header;
    EXPECT_EQ(DecodeFetchResponse(body).status().code(), StatusCode::kCorruption) << header;
  }
}

TEST(ReplicaFetchTest, EpochEndRoundTrips) {
  auto req = DecodeEpochEndRequest(EncodeEpochEndRequest({"t", 3, 5, 6}));
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->leader_epoch, 5);
  EXPECT_EQ(req->current_leader_epoch, 6);
  auto resp = DecodeEpochEndResponse(EncodeEpochEndResponse({"", 4, 1234}));
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->leader_epoch, 4);
  EXPECT_EQ(resp->end_offset, 1234);
  auto undefined = DecodeEpochEndResponse(EncodeEpochEndResponse({"", -1, -1}));
  ASSERT_TRUE(undefined.ok());
  EXPECT_EQ(undefined->end_offset, -1);
  EXPECT_FALSE(DecodeEpochEndRequest("{\"topic\":\"t\"}").ok());
}

}  // namespace
}  // namespace sluice::broker
