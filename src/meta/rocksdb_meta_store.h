// RocksDbMetaStore: the single-node MetaStore, kept in one RocksDB database in its own directory.
//
// Layout: one column family, keys and values as in meta/format.h (docs/formats/meta.md); the
// objects of a bucket form one contiguous key range, so a listing is one ordered scan that seeks
// over whole common-prefix groups instead of stepping through them. Record counts are merge
// counters written in the same WriteBatch as the records they count, so they survive crashes
// exactly as the records do.
//
// Durability: every mutation is one WriteBatch written with sync=true (the WAL is fsynced before
// the call returns), unless Options::sync_writes is turned off for tests.
//
// Thread-safety: all methods are thread-safe. Mutations of one (bucket, key) — its object and
// its uploads — are serialized by a lock stripe, so a read-check-write (replace, precondition,
// completion) is atomic; bucket creation and deletion exclude all other mutations. Reads take
// no lock and read a RocksDB snapshot, except GetBucket and ListBuckets: every bucket record is held in memory
// (loaded at open, replaced after each durable bucket mutation), since the S3 server reads its
// bucket on every request and this store is the only writer of its database.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "meta/meta_store.h"

namespace cairn::meta {

class RocksDbMetaStore {
 public:
  struct Options {
    // fsync the WAL before a mutation returns. Default true; false only for tests and bulk
    // loads that can be redone. Fixed at Open.
    bool sync_writes = true;
    // RocksDB block cache size. Default 32 MiB. Fixed at Open.
    size_t block_cache_bytes = size_t{32} << 20;
  };

  // Opens (creating when missing) the metadata database in `dir`.
  [[nodiscard]] static Result<std::unique_ptr<MetaStore>> Open(const std::string& dir);
  [[nodiscard]] static Result<std::unique_ptr<MetaStore>> Open(const std::string& dir, const Options& options);

  // Names of the counters that Stats() adds to the MetaStore ones:
  //   "list_iterator_steps": iterator seeks and nexts made by ListObjects since Open;
  //   "rocksdb_*": RocksDB integer properties (rocksdb.estimate-num-keys and so on, with '.'
  //   and '-' replaced by '_').
  static constexpr const char* kListIteratorSteps = "list_iterator_steps";
};

}  // namespace cairn::meta
