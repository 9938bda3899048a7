// A LevelDB Env that reads table files with pread() instead of mmap().
// LevelDB's default POSIX Env maps up to 1,000 table files into memory; the buffer's start-up
// verify scan (and the drain) touch every page of them, and mapped pages count in the process's
// resident memory: a 40 MB backlog on disk showed as +42 MB RSS, growing with the backlog up to
// the whole buffer. pread() goes through the page cache without mapping it into the process.
// Everything else is forwarded to the wrapped Env.
// Thread-safety: the Env and its files are safe for concurrent use, as leveldb requires.
#pragma once

namespace leveldb {
class Env;
}  // namespace leveldb

namespace sluice::gateway {

// A process-wide Env wrapping leveldb::Env::Default(). Never destroyed (like Env::Default()).
leveldb::Env* PreadTableEnv();

}  // namespace sluice::gateway
