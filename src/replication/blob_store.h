// BlobStore: where a node keeps the blobs (object chunks) of the chains it replicates
// (chain.h, "Blob"). The server puts them in its engine; tests use MemoryBlobStore.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/status.h"
#include "replication/chain.h"

namespace cairn::replication {

class BlobStore {
 public:
  virtual ~BlobStore() = default;
  // Stores every blob and returns once all are on stable storage. A blob already stored under
  // its id with the same CRC is left as it is (a resent update, a copy after a restart).
  virtual Status PutMany(const std::vector<const Blob*>& blobs) = 0;
  // Bytes [offset, offset + length) of a stored blob, verified against its stored checksum:
  // Corruption rather than damaged bytes; NotFound when it is not here.
  virtual Result<std::string> Read(const BlobInfo& blob, uint64_t offset, uint64_t length) = 0;
  // Whether the blob is here with that size and CRC, its bytes verified.
  virtual bool Has(const BlobInfo& blob) = 0;
  // Deletes a blob durably; OK when it is not here.
  virtual Status Delete(const std::string& id) = 0;
  // Deletes many (a store that can share the durability cost overrides it); the first error.
  virtual Status DeleteMany(const std::vector<std::string>& ids) {
    Status first;
    for (const std::string& id : ids) {
      Status s = Delete(id);
      if (!s.ok() && first.ok()) first = s;
    }
    return first;
  }
  // Whether the store can hold a blob of that id (a head refuses others before they reach a
  // disk, where a refusal would fail the node).
  virtual bool ValidId(std::string_view id) const { return !id.empty(); }
  // Calls fn with the id of every stored blob; blobs stored or deleted meanwhile may or may not
  // be seen.
  virtual void ForEach(const std::function<void(const std::string& id)>& fn) = 0;
};

// In memory; for tests. Damage() corrupts a stored blob, so readers' verification is tested;
// FailPuts() makes writes fail, as a broken disk's.
class MemoryBlobStore final : public BlobStore {
 public:
  Status PutMany(const std::vector<const Blob*>& blobs) override;
  Result<std::string> Read(const BlobInfo& blob, uint64_t offset, uint64_t length) override;
  bool Has(const BlobInfo& blob) override;
  Status Delete(const std::string& id) override;
  void ForEach(const std::function<void(const std::string& id)>& fn) override;

  size_t size() const;
  std::vector<std::string> Ids() const;
  void Damage(const std::string& id);
  // From now on every PutMany fails with IOError (a disk that refuses writes).
  void FailPuts() {
    std::lock_guard lock(mu_);
    fail_puts_ = true;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, Blob> blobs_;  // GUARDED_BY(mu_)
  bool fail_puts_ = false;             // GUARDED_BY(mu_)
};

}  // namespace cairn::replication
