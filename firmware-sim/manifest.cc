#include "firmware-sim/manifest.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace sluice::sim {

Manifest BuildManifest(const SimConfig& config, const std::vector<Device>& fleet,
                       const Ledger& ledger, int64_t started_ms, int64_t finished_ms) {
  Manifest m;
  m.seed = config.seed;
  m.started_ms = started_ms;
  m.finished_ms = finished_ms;
  m.devices.reserve(fleet.size());
  for (const Device& d : fleet) {
    DeviceOutcome o = ledger.Snapshot(d.index);
    ManifestDevice md;
    md.device_id = d.id;
    md.site = config.sites[static_cast<size_t>(d.site)].name;
    md.country = d.country;
    md.transport = DeviceTransportName(d.transport);
    md.sent = o.sent;
    md.first_seq = o.sent > 0 ? 1 : 0;
    md.last_seq = o.sent;
    // Pending events (none after a clean drain) count as failed.
    std::vector<uint64_t> failed;
    {
      std::vector<uint64_t> delivered;
      for (const auto& [a, b] : o.delivered_seqs) {
        for (uint64_t s = a; s <= b; ++s) delivered.push_back(s);
      }
      size_t di = 0;
      for (uint64_t s = 1; s <= o.sent; ++s) {
        if (di < delivered.size() && delivered[di] == s) {
          ++di;
        } else {
          failed.push_back(s);
        }
      }
    }
    md.failed_seqs = ToRanges(failed);
    const uint64_t n_failed = failed.size();
    const uint64_t n_ok = o.sent - n_failed;
    m.totals.sent += o.sent;
    if (d.transport == DeviceTransport::kMqtt) {
      m.totals.mqtt_sent += n_ok;
      m.totals.mqtt_errors += n_failed;
    } else {
      md.http_mode = d.http_single ? "single" : "batch";
      md.acked_seqs = o.delivered_seqs;
      m.totals.http_sent += o.sent;
      m.totals.http_acked += n_ok;
      m.totals.http_failed += n_failed;
    }
    m.devices.push_back(std::move(md));
  }
  return m;
}

namespace {

void WriteRanges(rapidjson::Writer<rapidjson::StringBuffer>& w, const std::vector<SeqRange>& r) {
  w.StartArray();
  for (const auto& [a, b] : r) {
    w.StartArray();
    w.Uint64(a);
    w.Uint64(b);
    w.EndArray();
  }
  w.EndArray();
}

}  // namespace

std::string ManifestToJson(const Manifest& m) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("seed");
  w.Uint64(m.seed);
  w.Key("started_ms");
  w.Int64(m.started_ms);
  w.Key("finished_ms");
  w.Int64(m.finished_ms);
  w.Key("totals");
  w.StartObject();
  w.Key("sent");
  w.Uint64(m.totals.sent);
  w.Key("mqtt_sent");
  w.Uint64(m.totals.mqtt_sent);
  w.Key("http_sent");
  w.Uint64(m.totals.http_sent);
  w.Key("http_acked");
  w.Uint64(m.totals.http_acked);
  w.Key("http_failed");
  w.Uint64(m.totals.http_failed);
  w.Key("mqtt_errors");
  w.Uint64(m.totals.mqtt_errors);
  w.EndObject();
  w.Key("devices");
  w.StartArray();
  for (const ManifestDevice& d : m.devices) {
    w.StartObject();
    w.Key("device_id");
    w.String(d.device_id.c_str(), static_cast<rapidjson::SizeType>(d.device_id.size()));
    w.Key("site");
    w.String(d.site.c_str(), static_cast<rapidjson::SizeType>(d.site.size()));
    w.Key("country");
    w.String(d.country.c_str(), static_cast<rapidjson::SizeType>(d.country.size()));
    w.Key("transport");
    w.String(d.transport.c_str(), static_cast<rapidjson::SizeType>(d.transport.size()));
    if (!d.http_mode.empty()) {
      w.Key("http_mode");
      w.String(d.http_mode.c_str(), static_cast<rapidjson::SizeType>(d.http_mode.size()));
    }
    w.Key("sent");
    w.Uint64(d.sent);
    w.Key("first_seq");
    w.Uint64(d.first_seq);
    w.Key("last_seq");
    w.Uint64(d.last_seq);
    if (d.transport == "http") {
      w.Key("acked_seqs");
      WriteRanges(w, d.acked_seqs);
    }
    w.Key("failed_seqs");
    WriteRanges(w, d.failed_seqs);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Status WriteFileAtomically(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError(tmp + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::IOError(tmp + ": write: " + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  int rc = ::fsync(fd);
  int err = errno;
  if (::close(fd) != 0 && rc == 0) {
    rc = -1;
    err = errno;
  }
  if (rc != 0) {
    ::unlink(tmp.c_str());
    return Status::IOError(tmp + ": fsync/close: " + std::strerror(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::IOError(path + ": rename: " + std::strerror(err));
  }
  return Status::Ok();
}

}  // namespace sluice::sim
