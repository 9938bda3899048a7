// Flips one byte in the middle of a buffered record as stored on disk (inside its chunk), as a
// torn write or bit rot would. Shared by the buffer unit test and the gateway binary test.
#pragma once

#include <leveldb/db.h>
#include <leveldb/iterator.h>

#include <memory>
#include <string>

#include "gateway/buffer/event_codec.h"

namespace sluice::testing {

// True when the record `seq` of `region` was found and damaged.
inline bool CorruptBufferedRecord(leveldb::DB* db, const std::string& region, uint64_t seq) {
  std::unique_ptr<leveldb::Iterator> it(db->NewIterator(leveldb::ReadOptions()));
  it->Seek(gateway::QueueKey('q', region, seq));
  const std::string prefix = gateway::QueueKeyPrefix('q', region);
  if (!it->Valid() || it->key().ToString().rfind(prefix, 0) != 0) {
    return false;
  }
  const std::string key = it->key().ToString();
  std::string chunk = it->value().ToString();
  it.reset();
  gateway::ChunkParser parser(chunk);
  uint64_t s = 0;
  std::string_view entry;
  while (parser.Next(&s, &entry)) {
    if (s == seq) {
      chunk[static_cast<size_t>(entry.data() - chunk.data()) + entry.size() / 2] ^= 0x55;
      return db->Put(leveldb::WriteOptions(), key, chunk).ok();
    }
  }
  return false;
}

}  // namespace sluice::testing
