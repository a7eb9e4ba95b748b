#include "replication/blob_store.h"

#include "common/crc32c.h"

namespace cairn::replication {

Status MemoryBlobStore::PutMany(const std::vector<const Blob*>& blobs) {
  std::lock_guard lock(mu_);
  if (fail_puts_) return Status::IOError("blob store: writes fail (MemoryBlobStore::FailPuts)");
  // A copy of its own: a blob may borrow bytes that do not outlive the call.
  for (const Blob* blob : blobs) blobs_.try_emplace(blob->id, Blob(blob->id, std::string(blob->data()), blob->crc32c));
  return Status::OK();
}

Result<std::string> MemoryBlobStore::Read(const BlobInfo& blob, uint64_t offset, uint64_t length) {
  std::lock_guard lock(mu_);
  auto it = blobs_.find(blob.id);
  if (it == blobs_.end()) return Status::NotFound("no such blob");
  const std::string_view bytes = it->second.data();
  if (crc32c::Value(bytes.data(), bytes.size()) != it->second.crc32c) return Status::Corruption("blob damaged");
  if (offset > bytes.size() || length > bytes.size() - offset) return Status::InvalidArgument("range past the end");
  return std::string(bytes.substr(offset, length));
}

bool MemoryBlobStore::Has(const BlobInfo& blob) {
  std::lock_guard lock(mu_);
  auto it = blobs_.find(blob.id);
  return it != blobs_.end() && it->second.data().size() == blob.size && it->second.crc32c == blob.crc32c &&
         crc32c::Value(it->second.data().data(), it->second.data().size()) == blob.crc32c;
}

Status MemoryBlobStore::Delete(const std::string& id) {
  std::lock_guard lock(mu_);
  blobs_.erase(id);
  return Status::OK();
}

void MemoryBlobStore::ForEach(const std::function<void(const std::string& id)>& fn) {
  for (const std::string& id : Ids()) fn(id);  // a copy: fn may call back into the store
}

size_t MemoryBlobStore::size() const {
  std::lock_guard lock(mu_);
  return blobs_.size();
}

std::vector<std::string> MemoryBlobStore::Ids() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [id, blob] : blobs_) out.push_back(id);
  return out;
}

void MemoryBlobStore::Damage(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = blobs_.find(id);
  if (it == blobs_.end() || it->second.data().empty()) return;
  std::string damaged(it->second.data());
  damaged[0] ^= 0x5a;
  it->second = Blob(it->second.id, std::move(damaged), it->second.crc32c);
}

}  // namespace cairn::replication
