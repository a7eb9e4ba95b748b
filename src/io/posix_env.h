// The psync back end: Env and File over plain POSIX calls (pread, pwritev, fdatasync).
//
// PosixEnv implements every Env method with system calls; errors become Status values through
// Status::FromErrno, so ENOSPC is kNoSpace and ENOENT kNotFound. PsyncFile owns its descriptor
// and closes it on destruction. The io_uring back end (uring_file.h) reuses both: UringEnv
// derives from PosixEnv for everything but OpenFile, and UringFile from PsyncFile for the calls
// that io_uring does not speed up (Size, Truncate, Allocate).
//
// Thread-safety: all methods may be called concurrently; neither class has mutable state beyond
// the descriptor, and pread/pwritev take explicit offsets.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "io/file.h"

namespace cairn::io {

class PsyncFile : public File {
 public:
  // Takes ownership of `fd`. `direct_alignment` is 1 for buffered files.
  PsyncFile(int fd, std::string path, size_t direct_alignment);
  ~PsyncFile() override;
  PsyncFile(const PsyncFile&) = delete;
  PsyncFile& operator=(const PsyncFile&) = delete;

  Result<size_t> ReadAt(uint64_t offset, std::span<std::byte> buf) override;
  Status WriteAt(uint64_t offset, std::span<const iovec> iov) override;
  Status WriteAtAndSync(uint64_t offset, std::span<const iovec> iov) override;
  Status Sync() override;
  Result<uint64_t> Size() override;
  Status Truncate(uint64_t size) override;
  Status Allocate(uint64_t offset, uint64_t len) override;
  int fd() const override { return fd_; }

 protected:
  // The pread loop and the pwritev loop, for subclasses that fall back to them.
  Result<size_t> PreadAll(uint64_t offset, std::span<std::byte> buf);
  Status PwritevAll(uint64_t offset, std::span<const iovec> iov);
  Status Fdatasync();

 private:
  const int fd_;
};

class PosixEnv : public Env {
 public:
  PosixEnv() = default;

  Backend backend() const override { return Backend::kPsync; }
  Result<std::unique_ptr<File>> OpenFile(const std::string& path, const OpenOptions& options) override;
  Status DeleteFile(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;
  Status SyncDir(const std::string& dir) override;
  Status CreateDirs(const std::string& dir) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Result<bool> FileExists(const std::string& path) override;
  Result<uint64_t> FreeSpace(const std::string& path) override;
  bool SupportsDirect(const std::string& dir) override;

 protected:
  struct OpenedFd {
    int fd = -1;
    size_t direct_alignment = 1;
  };
  // open(2) with the flags `options` asks for plus O_CLOEXEC, and the O_DIRECT alignment of the
  // result. The caller owns the descriptor. kNotSupported when O_DIRECT is refused.
  static Result<OpenedFd> OpenDescriptor(const std::string& path, const OpenOptions& options);
};

// Shared by both back ends: the number of bytes in `iov`.
size_t IovecBytes(std::span<const iovec> iov);

// A position inside an iovec list: skips bytes already written, so that a short write can be
// resumed, and cuts the remainder into slices of bounded size.
class IovecCursor {
 public:
  explicit IovecCursor(std::span<const iovec> iov);
  bool done() const { return index_ == iov_.size(); }
  // Moves forward by `n` bytes. REQUIRES: n <= bytes remaining.
  void Advance(size_t n);
  // Appends to `out` the iovecs for the next at most `max_bytes` bytes, in at most `max_iovs`
  // entries, without advancing; returns the byte count appended.
  size_t Peek(size_t max_bytes, size_t max_iovs, std::vector<iovec>* out) const;

 private:
  std::span<const iovec> iov_;
  size_t index_ = 0;  // current iovec; zero-length iovecs are skipped
  size_t skip_ = 0;   // bytes of iov_[index_] already consumed
  void SkipEmpty();
};

}  // namespace cairn::io
