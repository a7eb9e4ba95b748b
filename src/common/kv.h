// An ordered key-value state seen through a read-only interface, and the mutations that change
// it.
//
// The metadata logic (meta/meta_logic.h) is written against these, so that one implementation of
// every MetaStore operation runs over a RocksDB snapshot on a single node and over a chain
// replica's state in a cluster (replication/state_machine.h), where a deterministic command
// turns into the same KvMutations on every replica.
//
// Keys are ordered by their bytes (unsigned), as RocksDB's default comparator and std::string's
// operator< order them.
//
// Thread-safety: an iterator belongs to one thread; a reader is as thread-safe as its
// implementation says.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/status.h"

namespace cairn {

// A key's new value, or (no value) its deletion.
struct KvMutation {
  std::string key;
  std::optional<std::string> value;
  bool operator==(const KvMutation&) const = default;
};

class KvIterator {
 public:
  virtual ~KvIterator() = default;
  // Positions at the first key >= `key`.
  virtual void Seek(std::string_view key) = 0;
  // REQUIRES: Valid().
  virtual void Next() = 0;
  // False past the end, and after an error (then status() says which).
  virtual bool Valid() const = 0;
  // REQUIRES: Valid(). Stay valid until the next Seek or Next.
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
  virtual Status status() const = 0;
};

class KvReader {
 public:
  virtual ~KvReader() = default;
  // nullopt when the key is absent.
  virtual Result<std::optional<std::string>> Get(std::string_view key) const = 0;
  // An iterator over the same state, unpositioned (Seek first).
  virtual std::unique_ptr<KvIterator> NewIterator() const = 0;
};

}  // namespace cairn
