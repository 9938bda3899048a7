#include "gateway/buffer/buffer_check.h"

#include <leveldb/db.h>
#include <leveldb/iterator.h>

#include <map>
#include <memory>

#include "gateway/buffer/event_codec.h"

namespace sluice::gateway {
namespace {

struct Counts {
  uint64_t queued = 0;
  uint64_t queued_bytes = 0;
  uint64_t corrupt = 0;
  uint64_t dead = 0;
  uint64_t quarantined = 0;
};

std::string Printable(const leveldb::Slice& k) {
  if (k.size() < 11) {
    return k.ToString();
  }
  return std::string(k.data(), k.size() - 8) + std::to_string(GetBigEndian64(k.data() +
                                                                           k.size() - 8));
}

}  // namespace

Status CheckBuffer(const std::string& path, std::ostream& out) {
  leveldb::Options o;
  o.create_if_missing = false;
  leveldb::DB* raw = nullptr;
  leveldb::Status s = leveldb::DB::Open(o, path, &raw);
  if (!s.ok()) {
    return Status::IOError("cannot open buffer at " + path + ": " + s.ToString());
  }
  std::unique_ptr<leveldb::DB> db(raw);
  std::map<std::string, Counts> regions;
  uint64_t residency = 0;  // records no region may store (kept, never forwarded)
  std::string next_seq = "?";
  out << "buffer " << path << "\n";
  leveldb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<leveldb::Iterator> it(db->NewIterator(ro));
  SensorEvent e;
  // Pass 1 prints entries as met (quarantined / dead / corrupt), keeping only counters.
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    leveldb::Slice k = it->key();
    if (k.ToString() == kNextSeqKey && it->value().size() == 8) {
      next_seq = std::to_string(GetBigEndian64(it->value().data()));
      continue;
    }
    if (k.size() < 11 || k[1] != '/' || k[k.size() - 9] != '/') {
      continue;
    }
    std::string region(k.data() + 2, k.size() - 11);
    uint64_t seq = GetBigEndian64(k.data() + k.size() - 8);
    std::string_view v(it->value().data(), it->value().size());
    if (k[0] == 'r') {
      // The residency quarantine: "<reason>\n<entry>".
      ++residency;
      const size_t nl = v.find('\n');
      const std::string reason(v.substr(0, nl == std::string_view::npos ? v.size() : nl));
      out << "refused (residency) " << Printable(k) << ": " << reason;
      if (nl != std::string_view::npos && DecodeEntry(v.substr(nl + 1), seq, &e).ok()) {
        out << "; device " << e.device_id.value() << ", country " << e.country.value()
            << ", sensor " << e.sensor << ", ts " << e.ts_ms;
      } else {
        out << "; entry unreadable";
      }
      out << "\n";
      continue;
    }
    Counts& c = regions[region];
    if (k[0] == 'q') {
      // A chunk: every record in it is checked.
      ChunkParser parser(v);
      uint64_t rseq = 0;
      std::string_view entry;
      while (parser.Next(&rseq, &entry)) {
        Status st = DecodeEntry(entry, rseq, &e);
        if (st.ok()) {
          ++c.queued;
          c.queued_bytes += ChunkRecordBytes(entry.size());
        } else {
          ++c.corrupt;
          out << "corrupt (quarantined at next start) q/" << region << "/" << rseq
              << ": " << st.message() << "\n";
        }
      }
      if (parser.corrupt()) {
        ++c.corrupt;
        out << "corrupt (quarantined at next start) " << Printable(k)
            << ": unreadable chunk framing, " << parser.rest().size() << " bytes\n";
      }
    } else if (k[0] == 'x') {
      ++c.quarantined;
      Status st = DecodeEntry(v, seq, &e);
      out << "quarantined " << Printable(k) << ": "
          << (st.ok() ? std::string("decodes now (was unreadable when read)") : st.message())
          << "\n";
    } else if (k[0] == 'd') {
      ++c.dead;
      out << "dead letter " << Printable(k) << "\n";
    }
  }
  if (!it->status().ok()) {
    out << "scan error: " << it->status().ToString() << "\n";
  }
  uint64_t total_q = 0;
  uint64_t total_x = 0;
  uint64_t total_d = 0;
  for (const auto& [r, c] : regions) {
    out << "region " << r << ": queued " << c.queued << " records " << c.queued_bytes
        << " bytes, corrupt " << c.corrupt << ", quarantined " << c.quarantined
        << ", dead letters " << c.dead << "\n";
    total_q += c.queued;
    total_x += c.quarantined + c.corrupt;
    total_d += c.dead;
  }
  out << "total: queued " << total_q << ", quarantined " << total_x << ", dead letters "
      << total_d << ", refused (residency) " << residency << ", next_seq " << next_seq << "\n";
  return Status::Ok();
}

}  // namespace sluice::gateway
