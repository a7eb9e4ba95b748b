// PosixEnv and PsyncFile: see posix_env.h.
//
// Every system call that can return EINTR is retried. Short reads are continued until end of
// file, short writes until every byte is written or the kernel returns an error.
//
// Thread-safety: stateless apart from the descriptor; see posix_env.h.
#include "io/posix_env.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

namespace cairn::io {

namespace {

// Alignment assumed for O_DIRECT when the kernel does not report one (statx STATX_DIOALIGN
// arrived in Linux 6.1): 4096 covers every common logical block size.
constexpr size_t kDefaultDirectAlignment = 4096;
// Upper bound for one read or write call; Linux itself stops at about 2 GiB (MAX_RW_COUNT).
// A power of two, so it is a multiple of every O_DIRECT alignment.
constexpr size_t kMaxIoBytes = size_t{1} << 30;

std::string Context(std::string_view op, const std::string& path) {
  std::string s(op);
  s += ' ';
  s += path;
  return s;
}

// The O_DIRECT alignment of an open file: the stricter of the kernel's offset and memory
// alignments when it reports them, else kDefaultDirectAlignment.
size_t QueryDirectAlignment(int fd) {
#ifdef STATX_DIOALIGN
  struct statx stx = {};
  if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 && (stx.stx_mask & STATX_DIOALIGN) != 0) {
    const size_t align = std::max<size_t>(stx.stx_dio_offset_align, stx.stx_dio_mem_align);
    if (align != 0) return align;
  }
#else
  (void)fd;
#endif
  return kDefaultDirectAlignment;
}

}  // namespace

size_t IovecBytes(std::span<const iovec> iov) {
  size_t n = 0;
  for (const iovec& v : iov) n += v.iov_len;
  return n;
}

IovecCursor::IovecCursor(std::span<const iovec> iov) : iov_(iov) { SkipEmpty(); }

void IovecCursor::SkipEmpty() {
  while (index_ < iov_.size() && skip_ == iov_[index_].iov_len) {
    ++index_;
    skip_ = 0;
  }
}

void IovecCursor::Advance(size_t n) {
  while (n > 0 && index_ < iov_.size()) {
    const size_t take = std::min(n, iov_[index_].iov_len - skip_);
    skip_ += take;
    n -= take;
    SkipEmpty();
  }
}

size_t IovecCursor::Peek(size_t max_bytes, size_t max_iovs, std::vector<iovec>* out) const {
  size_t bytes = 0;
  size_t i = index_;
  size_t skip = skip_;
  size_t count = 0;
  while (i < iov_.size() && bytes < max_bytes && count < max_iovs) {
    const size_t avail = iov_[i].iov_len - skip;
    if (avail > 0) {
      const size_t take = std::min(avail, max_bytes - bytes);
      out->push_back(iovec{static_cast<char*>(iov_[i].iov_base) + skip, take});
      bytes += take;
      ++count;
    }
    ++i;
    skip = 0;
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// PsyncFile

PsyncFile::PsyncFile(int fd, std::string path, size_t direct_alignment)
    : File(std::move(path), direct_alignment), fd_(fd) {}

PsyncFile::~PsyncFile() {
  // close(2) errors are not reported: durability comes only from Sync, never from close.
  ::close(fd_);
}

Result<size_t> PsyncFile::PreadAll(uint64_t offset, std::span<std::byte> buf) {
  size_t done = 0;
  while (done < buf.size()) {
    const size_t want = std::min(buf.size() - done, kMaxIoBytes);
    const ssize_t n = ::pread(fd_, buf.data() + done, want, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, Context("pread", path()));
    }
    if (n == 0) break;  // end of file
    done += static_cast<size_t>(n);
    // An O_DIRECT read that stops off the alignment grid has reached end of file; asking again
    // from an unaligned offset would only fail with EINVAL.
    if (done % DirectAlignment() != 0) break;
  }
  return done;
}

Status PsyncFile::PwritevAll(uint64_t offset, std::span<const iovec> iov) {
  IovecCursor cursor(iov);
  std::vector<iovec> slice;
  while (!cursor.done()) {
    slice.clear();
    const size_t want = cursor.Peek(kMaxIoBytes, IOV_MAX, &slice);
    const ssize_t n = ::pwritev(fd_, slice.data(), static_cast<int>(slice.size()), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, Context("pwritev", path()));
    }
    if (n == 0 && want > 0) return Status::IOError(Context("pwritev wrote nothing", path()));
    cursor.Advance(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return Status::OK();
}

Status PsyncFile::Fdatasync() {
  while (::fdatasync(fd_) != 0) {
    if (errno == EINTR) continue;
    return Status::FromErrno(errno, Context("fdatasync", path()));
  }
  return Status::OK();
}

Result<size_t> PsyncFile::ReadAt(uint64_t offset, std::span<std::byte> buf) { return PreadAll(offset, buf); }

Status PsyncFile::WriteAt(uint64_t offset, std::span<const iovec> iov) { return PwritevAll(offset, iov); }

Status PsyncFile::WriteAtAndSync(uint64_t offset, std::span<const iovec> iov) {
  CAIRN_RETURN_IF_ERROR(PwritevAll(offset, iov));
  return Fdatasync();
}

Status PsyncFile::Sync() { return Fdatasync(); }

Result<uint64_t> PsyncFile::Size() {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return Status::FromErrno(errno, Context("fstat", path()));
  return static_cast<uint64_t>(st.st_size);
}

Status PsyncFile::Truncate(uint64_t size) {
  while (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
    if (errno == EINTR) continue;
    return Status::FromErrno(errno, Context("ftruncate", path()));
  }
  return Status::OK();
}

Status PsyncFile::Allocate(uint64_t offset, uint64_t len) {
  if (len == 0) return Status::OK();  // fallocate(2) rejects an empty range with EINVAL
  while (::fallocate(fd_, 0, static_cast<off_t>(offset), static_cast<off_t>(len)) != 0) {
    if (errno == EINTR) continue;
    if (errno == EOPNOTSUPP) return Status::NotSupported(Context("fallocate", path()));
    return Status::FromErrno(errno, Context("fallocate", path()));
  }
  return Status::OK();
}

// ---------------------------------------------------------------------------------------------
// PosixEnv

Result<PosixEnv::OpenedFd> PosixEnv::OpenDescriptor(const std::string& path, const OpenOptions& options) {
  int flags = O_CLOEXEC | (options.read_only ? O_RDONLY : O_RDWR);
  if (options.create) flags |= O_CREAT;
  if (options.create && options.exclusive) flags |= O_EXCL;
  if (options.direct) flags |= O_DIRECT;
  int fd;
  do {
    fd = ::open(path.c_str(), flags, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (options.direct && errno == EINVAL) return Status::NotSupported(Context("open O_DIRECT", path));
    return Status::FromErrno(errno, Context("open", path));
  }
  OpenedFd opened;
  opened.fd = fd;
  opened.direct_alignment = options.direct ? QueryDirectAlignment(fd) : 1;
  return opened;
}

Result<std::unique_ptr<File>> PosixEnv::OpenFile(const std::string& path, const OpenOptions& options) {
  CAIRN_ASSIGN_OR_RETURN(OpenedFd opened, OpenDescriptor(path, options));
  return std::unique_ptr<File>(std::make_unique<PsyncFile>(opened.fd, path, opened.direct_alignment));
}

Status PosixEnv::DeleteFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0) return Status::FromErrno(errno, Context("unlink", path));
  return Status::OK();
}

Status PosixEnv::RenameFile(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return Status::FromErrno(errno, Context("rename", from + " -> " + to));
  return Status::OK();
}

Status PosixEnv::SyncDir(const std::string& dir) {
  int fd;
  do {
    fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return Status::FromErrno(errno, Context("open dir", dir));
  Status s;
  while (::fsync(fd) != 0) {
    if (errno == EINTR) continue;
    s = Status::FromErrno(errno, Context("fsync dir", dir));
    break;
  }
  ::close(fd);
  return s;
}

Status PosixEnv::CreateDirs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::FromErrno(ec.value(), Context("mkdir", dir));
  return Status::OK();
}

Result<std::vector<std::string>> PosixEnv::ListDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Status::FromErrno(errno, Context("opendir", dir));
  std::vector<std::string> names;
  while (true) {
    errno = 0;
    const dirent* e = ::readdir(d);
    if (e == nullptr) {
      const int err = errno;
      ::closedir(d);
      if (err != 0) return Status::FromErrno(err, Context("readdir", dir));
      break;
    }
    const std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  return names;
}

Result<bool> PosixEnv::FileExists(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  return Status::FromErrno(errno, Context("stat", path));
}

Result<uint64_t> PosixEnv::FreeSpace(const std::string& path) {
  struct statvfs st;
  if (::statvfs(path.c_str(), &st) != 0) return Status::FromErrno(errno, Context("statvfs", path));
  return static_cast<uint64_t>(st.f_bavail) * static_cast<uint64_t>(st.f_frsize);
}

bool PosixEnv::SupportsDirect(const std::string& dir) {
  // Some file systems accept O_DIRECT at open and refuse the I/O, so the probe writes one block.
  static std::atomic<uint64_t> counter{0};
  const std::string path = dir + "/.cairn-direct-probe-" + std::to_string(::getpid()) + "-" +
                           std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
  int fd;
  do {
    fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_DIRECT | O_CLOEXEC, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return false;
  const size_t align = QueryDirectAlignment(fd);
  AlignedBuffer block(align, align);
  ssize_t n;
  do {
    n = ::pwrite(fd, block.data(), block.size(), 0);
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  ::unlink(path.c_str());
  return n == static_cast<ssize_t>(block.size());
}

}  // namespace cairn::io
