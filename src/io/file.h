// The io layer's file interface: every byte the engine stores goes through io::Env and io::File.
//
// Env is the seam between Cairn and the operating system's files (in the manner of LevelDB's
// Env): a real back end (io_uring by default, pread/pwrite as the fallback chosen when the kernel
// refuses io_uring), and a fault-injecting wrapper for tests (fault_env.h). Calls are
// synchronous: they return once the kernel has completed the operation.
//
// Thread-safety: Env and File methods may be called concurrently from any number of threads.
// Concurrent writes to overlapping ranges of one file give an unspecified result, as with
// pwrite(2).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/status.h"

namespace cairn::io {

enum class Backend : uint8_t {
  kAuto,     // io_uring when the kernel allows it, else kPsync
  kIoUring,  // io_uring; Env creation fails when the kernel refuses it
  kPsync,    // pread/pwritev/fdatasync
};

std::string_view BackendName(Backend b);
// Parses "auto", "io_uring" (or "uring"), "psync".
Result<Backend> ParseBackend(std::string_view name);

struct OpenOptions {
  bool create = false;     // O_CREAT
  bool exclusive = false;  // O_EXCL (with create)
  bool read_only = false;  // O_RDONLY instead of O_RDWR
  // O_DIRECT: offsets, lengths and buffer addresses must be multiples of File::DirectAlignment().
  bool direct = false;
};

class File {
 public:
  virtual ~File() = default;

  // Reads up to buf.size() bytes at `offset`; returns the number read, short only at end of file.
  virtual Result<size_t> ReadAt(uint64_t offset, std::span<std::byte> buf) = 0;
  // Writes all of `iov` contiguously at `offset`. A short write is retried; an error is returned
  // as a Status (kNoSpace for ENOSPC).
  virtual Status WriteAt(uint64_t offset, std::span<const iovec> iov) = 0;
  // Writes like WriteAt, then makes the file's data durable (fdatasync). A back end may issue
  // the write as several concurrent pieces and link the sync behind them (io_uring); the call
  // returns only when all of it is on stable storage.
  virtual Status WriteAtAndSync(uint64_t offset, std::span<const iovec> iov) = 0;
  // fdatasync(2).
  virtual Status Sync() = 0;
  virtual Result<uint64_t> Size() = 0;
  virtual Status Truncate(uint64_t size) = 0;
  // Reserves space for [offset, offset+len) (fallocate mode 0; the file grows to cover it).
  // kNotSupported when the file system cannot.
  virtual Status Allocate(uint64_t offset, uint64_t len) = 0;
  // The descriptor, for zero-copy transfers (sendfile/splice) by the caller. It stays valid as
  // long as this File lives. Reads done through it bypass any fault injection.
  virtual int fd() const = 0;
  const std::string& path() const { return path_; }
  // The alignment (bytes) required for O_DIRECT offsets, lengths and buffers; 1 for buffered files.
  size_t DirectAlignment() const { return direct_alignment_; }

 protected:
  File(std::string path, size_t direct_alignment) : path_(std::move(path)), direct_alignment_(direct_alignment) {}

 private:
  std::string path_;
  size_t direct_alignment_;
};

class Env {
 public:
  virtual ~Env() = default;

  // Creates the real Env with the given back end. kAuto probes io_uring once and falls back to
  // psync, logging which it chose.
  static Result<std::unique_ptr<Env>> Create(Backend backend = Backend::kAuto);

  virtual Backend backend() const = 0;
  virtual Result<std::unique_ptr<File>> OpenFile(const std::string& path, const OpenOptions& options) = 0;
  virtual Status DeleteFile(const std::string& path) = 0;
  // rename(2); atomic replacement of `to`.
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  // Makes the directory's entries (creations, renames, deletions) durable: fsync on the directory.
  virtual Status SyncDir(const std::string& dir) = 0;
  // Creates the directory and its parents; OK if it exists.
  virtual Status CreateDirs(const std::string& dir) = 0;
  // Names (not paths) of the entries of `dir`, without "." and "..".
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  virtual Result<bool> FileExists(const std::string& path) = 0;
  // Bytes available to an unprivileged user on the file system holding `path`.
  virtual Result<uint64_t> FreeSpace(const std::string& path) = 0;
  // Whether O_DIRECT works for files in `dir` (false on tmpfs, for instance).
  virtual bool SupportsDirect(const std::string& dir) = 0;
};

// A heap buffer aligned for O_DIRECT. Move-only.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // Allocates `size` bytes (rounded up to `alignment`), zero-filled, aligned to `alignment`.
  AlignedBuffer(size_t size, size_t alignment);
  AlignedBuffer(AlignedBuffer&& other) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer();

  std::byte* data() { return data_; }
  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<std::byte> span() { return {data_, size_}; }

 private:
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace cairn::io
