// Queries of a region (issue 12), in process, beside PostgreSQL 15 holding the same rows.
// Loads N sensor records (20,000 devices, ~200-byte JSON payloads and the gateway's headers,
// timestamps over one week in arrival order, 8 partitions by key as produce places them) into a
// TopicStore, builds the partition indexes (StoreIndexer) and reports its rate and size per
// record, then times RunQuery: device + 1-hour range (p50/p99), country + 1-hour range (time per
// record answered), and the full scan the broker did before the index (scan rate measured on the
// same log for a few seconds, extrapolated to N: said so in the output). With --pg CONNINFO the
// same rows go into a table indexed on (device_id, ts) and (country, ts) with COPY and the same
// queries (same devices, windows, order and limit) run through prepared statements.
// Usage: sluice-bench-query --dir DIR [--records N] [--queries Q] [--pg CONNINFO]
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "cloud-broker/index/store_indexer.h"
#include "cloud-broker/log/topic_store.h"
#include "cloud-broker/query/aggregate.h"
#include "cloud-broker/query/query.h"
#include "core/partitioner.h"
#include "core/record_batch.h"

#ifdef SLUICE_BENCH_WITH_PG
#include <libpq-fe.h>
#endif

namespace {

using namespace sluice;
using namespace sluice::broker;
using SteadyClock = std::chrono::steady_clock;

constexpr int kDevices = 20'000;
constexpr int kPartitions = 8;
constexpr int64_t kT0 = 1'767'225'600'000;  // 2026-01-01T00:00:00Z
constexpr int64_t kWeekMs = 7LL * 24 * 3600 * 1000;
constexpr int64_t kHourMs = 3600LL * 1000;
const char* const kCountries[] = {"DE", "FR", "AT", "NL", "BE", "IT", "ES", "PL"};
const char* const kSensors[] = {"temperature", "humidity", "pressure", "vibration"};

double Seconds(SteadyClock::time_point since) {
  return std::chrono::duration<double>(SteadyClock::now() - since).count();
}

std::string DeviceName(int d) {
  char b[16];
  std::snprintf(b, sizeof(b), "dev-%05d", d);
  return b;
}

// The i-th record of the data set (deterministic: PostgreSQL is loaded with the same rows).
struct Row {
  std::string device;
  const char* country;
  const char* sensor;
  int64_t ts;
  std::string payload;
};

class Generator {
 public:
  explicit Generator(int64_t n) : n_(n), rng_(42) {}
  Row Next() {
    const int64_t i = i_++;
    const int d = device_(rng_);
    Row r;
    r.device = DeviceName(d);
    r.country = kCountries[d % 8];
    r.sensor = kSensors[d % 4];
    r.ts = kT0 + i * (kWeekMs / n_) + jitter_(rng_);  // arrival order, a little out of order
    char v[32];
    std::snprintf(v, sizeof(v), "%.2f", value_(rng_));
    r.payload = std::string("{\"device_id\":\"") + r.device + "\",\"sensor\":\"" + r.sensor +
                "\",\"v\":" + v + ",\"unit\":\"C\",\"fw\":\"1.4.2\",\"site\":\"hall-3\",\"pad\":\"" +
                std::string(86, 'x') + "\"}";
    return r;
  }

 private:
  const int64_t n_;
  int64_t i_ = 0;
  std::mt19937_64 rng_;
  std::uniform_int_distribution<int> device_{0, kDevices - 1};
  std::uniform_int_distribution<int64_t> jitter_{0, 2000};
  std::uniform_real_distribution<double> value_{-20.0, 40.0};
};

Record ToRecord(const Row& row, int64_t seq) {
  Record r;
  r.timestamp_ms = row.ts;
  r.key = row.device;
  r.value = row.payload;
  r.headers = {{kHeaderSensor, row.sensor},
               {kHeaderCountry, row.country},
               {kHeaderGatewayId, "gw-1"},
               {kHeaderGatewaySeq, std::to_string(seq)},
               {kHeaderIngestTs, std::to_string(row.ts + 40)},
               {kHeaderSource, "mqtt"}};
  return r;
}

int64_t DirBytes(const std::string& dir) {
  int64_t total = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) total += static_cast<int64_t>(e.file_size());
  }
  return total;
}

struct Latency {
  std::vector<double> ms;
  double P(double q) {
    if (ms.empty()) return 0;
    std::sort(ms.begin(), ms.end());
    return ms[std::min(ms.size() - 1, static_cast<size_t>(q * static_cast<double>(ms.size())))];
  }
};

// The queries, the same for both systems.
struct Probe {
  std::string device;
  std::string country;
  int64_t from;
};

std::vector<Probe> Probes(int n, int64_t records) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> device(0, kDevices - 1);
  std::uniform_int_distribution<int64_t> from(kT0, kT0 + kWeekMs - kHourMs);
  std::vector<Probe> out;
  (void)records;
  for (int i = 0; i < n; ++i) {
    const int d = device(rng);
    out.push_back({DeviceName(d), kCountries[d % 8], from(rng)});
  }
  return out;
}

#ifdef SLUICE_BENCH_WITH_PG
bool PgOk(PGresult* r, const char* what) {
  const auto st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_COPY_IN) {
    std::fprintf(stderr, "postgres: %s: %s\n", what, PQresultErrorMessage(r));
    return false;
  }
  return true;
}

void RunPostgres(const std::string& conninfo, int64_t n, const std::vector<Probe>& probes,
                 size_t country_limit) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::fprintf(stderr, "postgres: %s\n", PQerrorMessage(c));
    return;
  }
  auto exec = [&](const char* sql) {
    PGresult* r = PQexec(c, sql);
    const bool ok = PgOk(r, sql);
    PQclear(r);
    return ok;
  };
  exec("DROP TABLE IF EXISTS readings");
  exec("CREATE TABLE readings (device_id text NOT NULL, country text NOT NULL, sensor text NOT "
       "NULL, ts bigint NOT NULL, payload jsonb NOT NULL)");
  auto t = SteadyClock::now();
  PGresult* r = PQexec(c, "COPY readings FROM STDIN");
  if (!PgOk(r, "COPY")) return;
  PQclear(r);
  Generator gen(n);
  std::string buf;
  for (int64_t i = 0; i < n; ++i) {
    Row row = gen.Next();
    buf += row.device + '\t' + row.country + '\t' + row.sensor + '\t' + std::to_string(row.ts) +
           '\t' + row.payload + '\n';
    if (buf.size() > (1 << 20) || i + 1 == n) {
      if (PQputCopyData(c, buf.data(), static_cast<int>(buf.size())) != 1) {
        std::fprintf(stderr, "postgres: COPY: %s\n", PQerrorMessage(c));
        return;
      }
      buf.clear();
    }
  }
  PQputCopyEnd(c, nullptr);
  r = PQgetResult(c);
  PgOk(r, "COPY end");
  PQclear(r);
  const double load_s = Seconds(t);
  t = SteadyClock::now();
  exec("CREATE INDEX readings_device_ts ON readings (device_id, ts)");
  exec("CREATE INDEX readings_country_ts ON readings (country, ts)");
  exec("VACUUM ANALYZE readings");
  const double index_s = Seconds(t);
  PGresult* size = PQexec(c, "SELECT pg_relation_size('readings'), "
                              "pg_relation_size('readings_device_ts') + "
                              "pg_relation_size('readings_country_ts')");
  std::printf("postgres: COPY %lld rows in %.1f s (%.0f rows/s); 2 indexes built in %.1f s; "
              "table %.1f B/row, indexes %.1f B/row\n",
              static_cast<long long>(n), load_s, static_cast<double>(n) / load_s, index_s,
              std::atof(PQgetvalue(size, 0, 0)) / static_cast<double>(n),
              std::atof(PQgetvalue(size, 0, 1)) / static_cast<double>(n));
  PQclear(size);
  r = PQprepare(c, "dev",
                "SELECT device_id, ts, payload FROM readings WHERE device_id = $1 AND ts >= $2 "
                "AND ts < $3 ORDER BY ts LIMIT 100",
                3, nullptr);
  PgOk(r, "prepare dev");
  PQclear(r);
  r = PQprepare(c, "country",
                ("SELECT device_id, ts, payload FROM readings WHERE country = $1 AND ts >= $2 "
                 "AND ts < $3 ORDER BY ts LIMIT " + std::to_string(country_limit)).c_str(),
                3, nullptr);
  PgOk(r, "prepare country");
  PQclear(r);
  auto run = [&](const char* stmt, const std::string& key, int64_t from, int64_t* rows) {
    const std::string a = std::to_string(from);
    const std::string b = std::to_string(from + kHourMs);
    const char* params[] = {key.c_str(), a.c_str(), b.c_str()};
    const auto q = SteadyClock::now();
    PGresult* res = PQexecPrepared(c, stmt, 3, params, nullptr, nullptr, 0);
    const double ms = Seconds(q) * 1000;
    PgOk(res, stmt);
    *rows += PQntuples(res);
    PQclear(res);
    return ms;
  };
  for (int pass = 0; pass < 2; ++pass) {  // the first pass warms the cache, as for Sluice
    Latency dev;
    int64_t rows = 0;
    for (const Probe& p : probes) dev.ms.push_back(run("dev", p.device, p.from, &rows));
    Latency country;
    int64_t crows = 0;
    for (size_t i = 0; i < probes.size() / 10; ++i) {
      country.ms.push_back(run("country", probes[i].country, probes[i].from, &crows));
    }
    if (pass == 1) {
      std::printf("postgres: device + 1 h: p50 %.3f ms, p99 %.3f ms (%.1f rows/query)\n",
                  dev.P(0.5), dev.P(0.99), static_cast<double>(rows) / probes.size());
      std::printf("postgres: country + 1 h, limit %zu: p50 %.3f ms, p99 %.3f ms (%.1f rows/query)\n",
                  country_limit, country.P(0.5), country.P(0.99),
                  static_cast<double>(crows) / static_cast<double>(probes.size() / 10));
    }
  }
  for (const bool field : {false, true}) {
    const int64_t from = kT0 + 2 * 24 * kHourMs;
    const std::string sql =
        std::string("SELECT ts / 3600000 AS h, ") + (field ? "" : "country, ") +
        "count(*)" + (field ? ", avg((payload->>'v')::float8)" : "") +
        " FROM readings WHERE ts >= " + std::to_string(from) + " AND ts < " +
        std::to_string(from + 24 * kHourMs) + " GROUP BY 1" + (field ? "" : ", 2");
    const auto q = SteadyClock::now();
    PGresult* res = PQexec(c, sql.c_str());
    const double s = Seconds(q);
    PgOk(res, "aggregate");
    std::printf("postgres: aggregate of one day per 1 h bucket, %s: %.3f s (%d rows)\n",
                field ? "avg of payload field v" : "counts per country", s, PQntuples(res));
    PQclear(res);
  }
  exec("DROP TABLE readings");
  PQfinish(c);
}
#endif

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  int64_t n = 20'000'000;
  int queries = 500;
  std::string pg;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
    if (std::strcmp(argv[i], "--records") == 0) n = std::atoll(argv[i + 1]);
    if (std::strcmp(argv[i], "--queries") == 0) queries = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--pg") == 0) pg = argv[i + 1];
  }
  if (dir.empty() || n < 1000) {
    std::fprintf(stderr, "usage: sluice-bench-query --dir DIR [--records N>=1000] [--queries Q] "
                         "[--pg CONNINFO]\n");
    return 2;
  }
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  TopicStoreOptions so;
  so.data_dir = dir + "/data";
  so.log.flush = FlushPolicy::kInterval;  // loading speed is not what this measures
  so.log.flush_ms = -1;
  auto store = TopicStore::Open(so);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  auto topic = (*store)->Create(TopicName("sensors"), kPartitions);
  if (!topic.ok()) {
    std::fprintf(stderr, "%s\n", topic.status().ToString().c_str());
    return 1;
  }

  // --- load: batches of ~1,000 records, split by partition as produce does ---
  auto t = SteadyClock::now();
  Generator gen(n);
  std::vector<std::vector<Record>> parts(kPartitions);
  int64_t appended = 0;
  auto flush = [&](bool all) {
    for (int p = 0; p < kPartitions; ++p) {
      if (parts[p].empty() || (!all && parts[p].size() < 1000 / kPartitions * 4)) continue;
      RecordBatch b;
      b.records = std::move(parts[p]);
      parts[p].clear();
      auto st = (*topic)->partition(p)->Append(EncodeBatch(b));
      if (!st.ok()) {
        std::fprintf(stderr, "append: %s\n", st.status().ToString().c_str());
        std::exit(1);
      }
    }
  };
  for (int64_t i = 0; i < n; ++i) {
    Row row = gen.Next();
    const int p = PartitionForKey(row.device, kPartitions);
    parts[p].push_back(ToRecord(row, i));
    ++appended;
    if (i % 1000 == 999) flush(false);
  }
  flush(true);
  for (int p = 0; p < kPartitions; ++p) (void)(*topic)->partition(p)->Flush();
  const double load_s = Seconds(t);
  const int64_t log_bytes = DirBytes(so.data_dir + "/logs");
  std::printf("sluice: loaded %lld records in %.1f s (%.0f records/s, in process, no fsync); "
              "log %.1f B/record\n",
              static_cast<long long>(appended), load_s, static_cast<double>(appended) / load_s,
              static_cast<double>(log_bytes) / static_cast<double>(n));

  // --- full scan (the broker before the index): rate over a few seconds, extrapolated ---
  const std::vector<Probe> probes = Probes(queries, n);
  {
    QueryFilter f;
    f.sensor = "none";  // matches nothing: the scan reads everything, keeps nothing
    QueryDeadline d{&SystemClock::Instance(), SystemClock::Instance().MonotonicUs() + 3'000'000};
    t = SteadyClock::now();
    auto r = RunQuery(**store, f, d, nullptr);
    const double s = Seconds(t);
    const double rate = static_cast<double>(r.ok() ? r->scanned : 0) / s;
    std::printf("full scan (no index): %.0f records/s on one core -> a device + 1 h query over "
                "%lld records would take ~%.2f s (extrapolated from %llu records scanned in "
                "%.1f s)\n",
                rate, static_cast<long long>(n), static_cast<double>(n) / rate,
                static_cast<unsigned long long>(r.ok() ? r->scanned : 0), s);
  }

  // --- index build ---
  StoreIndexerOptions io;
  io.dir = dir + "/data/index";
  auto indexer_owner = std::make_unique<StoreIndexer>(io, **store);
  StoreIndexer& indexer = *indexer_owner;
  t = SteadyClock::now();
  Status built = indexer.CatchUp();
  const double index_s = Seconds(t);
  if (!built.ok()) {
    std::fprintf(stderr, "index: %s\n", built.ToString().c_str());
    return 1;
  }
  const int64_t index_bytes = DirBytes(io.dir);
  std::printf("sluice: indexed %lld records in %.1f s (%.0f records/s, one thread); index %.1f "
              "B/record (log %.1f B/record)\n",
              static_cast<long long>(n), index_s, static_cast<double>(n) / index_s,
              static_cast<double>(index_bytes) / static_cast<double>(n),
              static_cast<double>(log_bytes) / static_cast<double>(n));

  IndexLookup lookup = [&indexer](const std::string& tp, int32_t p) {
    return indexer.Find(tp, p);
  };
  const size_t country_limit = 1000;
  for (int pass = 0; pass < 2; ++pass) {  // the first pass warms the page cache
    Latency dev;
    int64_t rows = 0;
    for (const Probe& p : probes) {
      QueryFilter f;
      f.device_id = DeviceId(p.device);
      f.from_ms = p.from;
      f.to_ms = p.from + kHourMs;
      f.limit = 100;
      const auto q = SteadyClock::now();
      auto r = RunQuery(**store, f, {}, lookup);
      dev.ms.push_back(Seconds(q) * 1000);
      if (!r.ok()) {
        std::fprintf(stderr, "query: %s\n", r.status().ToString().c_str());
        return 1;
      }
      rows += static_cast<int64_t>(r->records.size());
    }
    Latency country;
    int64_t crows = 0;
    for (size_t i = 0; i < probes.size() / 10; ++i) {
      QueryFilter f;
      f.country = CountryCode(probes[i].country);
      f.from_ms = probes[i].from;
      f.to_ms = probes[i].from + kHourMs;
      f.limit = country_limit;
      const auto q = SteadyClock::now();
      auto r = RunQuery(**store, f, {}, lookup);
      country.ms.push_back(Seconds(q) * 1000);
      if (r.ok()) crows += static_cast<int64_t>(r->records.size());
    }
    Latency lookup_only;  // the index lookup alone, without reading the records
    for (const Probe& p : probes) {
      const PartitionIndex* index =
          indexer.Find("sensors", PartitionForKey(p.device, kPartitions));
      const auto q = SteadyClock::now();
      auto hits = index->Device(p.device, p.from, p.from + kHourMs, std::nullopt, 100);
      lookup_only.ms.push_back(Seconds(q) * 1000);
      (void)hits;
    }
    if (pass == 1) {
      std::printf("sluice: device + 1 h: p50 %.3f ms, p99 %.3f ms (%.1f records/query; the "
                  "index lookup alone p50 %.3f ms)\n",
                  dev.P(0.5), dev.P(0.99), static_cast<double>(rows) / probes.size(),
                  lookup_only.P(0.5));
      std::printf("sluice: country + 1 h, limit %zu: p50 %.3f ms, p99 %.3f ms (%.1f "
                  "records/query, %.1f us/record)\n",
                  country_limit, country.P(0.5), country.P(0.99),
                  static_cast<double>(crows) / static_cast<double>(probes.size() / 10),
                  country.P(0.5) * 1000 /
                      std::max(1.0, static_cast<double>(crows) /
                                        static_cast<double>(probes.size() / 10)));
    }
  }
  // Aggregates of one day: counts per country per hour (the index's minute rollups), and the
  // average of payload field v per hour (every record of the day read).
  for (const bool field : {false, true}) {
    AggregateSpec spec;
    spec.filter.from_ms = kT0 + 2 * 24 * kHourMs;
    spec.filter.to_ms = *spec.filter.from_ms + 24 * kHourMs;
    spec.bucket_ms = kHourMs;
    if (field) {
      spec.field = "v";
    } else {
      spec.group_by = "country";  // (a ?: of two literals trips GCC 12's -Wrestrict)
    }
    t = SteadyClock::now();
    auto r = RunAggregate(**store, spec, {}, lookup);
    const double s = Seconds(t);
    if (!r.ok()) {
      std::fprintf(stderr, "aggregate: %s\n", r.status().ToString().c_str());
      return 1;
    }
    uint64_t counted = 0;
    for (const AggregateRow& row : r->rows) counted += row.count;
    std::printf("sluice: aggregate of one day per 1 h bucket, %s: %.3f s (%zu rows, %llu "
                "records counted, %llu minute rollups, %llu index entries, %llu records "
                "read)\n",
                field ? "avg of payload field v" : "counts per country", s, r->rows.size(),
                static_cast<unsigned long long>(counted),
                static_cast<unsigned long long>(r->rollups),
                static_cast<unsigned long long>(r->index_entries),
                static_cast<unsigned long long>(r->records_read));
  }
  indexer_owner.reset();  // closes the index database (its compaction thread) first
  store->reset();
  std::filesystem::remove_all(dir);  // room for PostgreSQL's copy
#ifdef SLUICE_BENCH_WITH_PG
  if (!pg.empty()) RunPostgres(pg, n, probes, country_limit);
#else
  if (!pg.empty()) std::fprintf(stderr, "built without libpq: no PostgreSQL comparison\n");
#endif
  return 0;
}
