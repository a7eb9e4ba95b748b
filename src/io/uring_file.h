// The io_uring back end: UringFile issues reads, writes and data syncs through io_uring.
//
// Calls stay synchronous (see file.h); what io_uring buys is that WriteAtAndSync sends a large
// write to the device as several concurrent pieces with the data sync queued behind them, in
// one io_uring_enter call, where psync needs a pwritev and an fdatasync that each wait in turn.
// Each thread uses its own ring (created on first use, 64 entries) and drains it before a call
// returns, so a ring never holds requests of two calls. When a thread cannot create its ring
// (for instance RLIMIT_MEMLOCK on kernels before 5.12), its calls take the psync path.
// Size, Truncate and Allocate are plain system calls inherited from PsyncFile.
//
// Thread-safety: as File and Env (file.h); the rings are thread_local.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "io/posix_env.h"

namespace cairn::io {

class UringFile final : public PsyncFile {
 public:
  // Takes ownership of `fd`.
  UringFile(int fd, std::string path, size_t direct_alignment) : PsyncFile(fd, std::move(path), direct_alignment) {}

  Result<size_t> ReadAt(uint64_t offset, std::span<std::byte> buf) override;
  Status WriteAt(uint64_t offset, std::span<const iovec> iov) override;
  Status WriteAtAndSync(uint64_t offset, std::span<const iovec> iov) override;
  Status Sync() override;

 private:
  // Writes `iov` at `offset` as concurrent pieces; with `sync`, a data sync follows them.
  Status WritePieces(uint64_t offset, std::span<const iovec> iov, bool sync);
  // Writes `iov` at `offset` one request at a time, resuming short writes.
  Status WriteSequential(uint64_t offset, std::span<const iovec> iov);
  Status UringSync();
};

// PosixEnv whose files are UringFiles. REQUIRES: the kernel accepts io_uring (Env::Create checks).
class UringEnv final : public PosixEnv {
 public:
  Backend backend() const override { return Backend::kIoUring; }
  Result<std::unique_ptr<File>> OpenFile(const std::string& path, const OpenOptions& options) override;
};

}  // namespace cairn::io
