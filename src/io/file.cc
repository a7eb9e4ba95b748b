// Back-end names, AlignedBuffer, and Env::Create, which chooses between the io_uring and psync
// back ends.
//
// The io_uring probe runs once per process: it sets up a small ring and asks the kernel whether
// the operations UringFile uses are there. A kernel that refuses io_uring_setup (too old,
// disabled by sysctl, or blocked by a seccomp filter, as in many containers) makes kAuto pick
// psync; Env::Create itself logs nothing, the caller reports the chosen backend().
//
// Thread-safety: Env::Create may be called from any thread; the probe is done under a
// function-local static's initialisation guard.
#include "io/file.h"

#include <liburing.h>
#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "io/posix_env.h"
#include "io/uring_file.h"

namespace cairn::io {

std::string_view BackendName(Backend b) {
  switch (b) {
    case Backend::kAuto:
      return "auto";
    case Backend::kIoUring:
      return "io_uring";
    case Backend::kPsync:
      return "psync";
  }
  return "unknown";
}

Result<Backend> ParseBackend(std::string_view name) {
  if (name == "auto") return Backend::kAuto;
  if (name == "io_uring" || name == "uring") return Backend::kIoUring;
  if (name == "psync") return Backend::kPsync;
  return Status::InvalidArgument("unknown io backend \"" + std::string(name) + "\" (expected auto, io_uring or psync)");
}

AlignedBuffer::AlignedBuffer(size_t size, size_t alignment) {
  if (size == 0) return;
  // posix_memalign needs a power of two that is a multiple of sizeof(void*).
  size_t align = sizeof(void*);
  while (align < alignment) align <<= 1;
  const size_t rounded = (size + align - 1) / align * align;
  void* p = nullptr;
  if (posix_memalign(&p, align, rounded) != 0) {
    // Out of memory is not a condition the storage path can act on; fail loudly.
    std::fprintf(stderr, "AlignedBuffer: cannot allocate %zu bytes aligned to %zu\n", rounded, align);
    std::abort();
  }
  std::memset(p, 0, rounded);
  data_ = static_cast<std::byte*>(p);
  size_ = rounded;
}

AlignedBuffer::AlignedBuffer(AlignedBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& other) noexcept {
  if (this != &other) {
    std::free(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

AlignedBuffer::~AlignedBuffer() { std::free(data_); }

namespace {

// True when the kernel lets this process set up a ring that supports the operations UringFile
// issues (read, writev, fsync).
bool ProbeIoUring() {
  io_uring ring;
  if (io_uring_queue_init(/*entries=*/4, &ring, /*flags=*/0) < 0) return false;
  bool ok = false;
  io_uring_probe* probe = io_uring_get_probe_ring(&ring);
  if (probe != nullptr) {
    ok = io_uring_opcode_supported(probe, IORING_OP_READ) && io_uring_opcode_supported(probe, IORING_OP_WRITEV) &&
         io_uring_opcode_supported(probe, IORING_OP_FSYNC);
    io_uring_free_probe(probe);
  }
  io_uring_queue_exit(&ring);
  return ok;
}

bool IoUringAvailable() {
  static const bool available = ProbeIoUring();
  return available;
}

}  // namespace

Result<std::unique_ptr<Env>> Env::Create(Backend backend) {
  switch (backend) {
    case Backend::kPsync:
      return std::unique_ptr<Env>(std::make_unique<PosixEnv>());
    case Backend::kIoUring:
      if (!IoUringAvailable()) return Status::NotSupported("io_uring refused by the kernel");
      return std::unique_ptr<Env>(std::make_unique<UringEnv>());
    case Backend::kAuto:
      if (IoUringAvailable()) return std::unique_ptr<Env>(std::make_unique<UringEnv>());
      return std::unique_ptr<Env>(std::make_unique<PosixEnv>());
  }
  return Status::InvalidArgument("unknown io backend");
}

}  // namespace cairn::io
