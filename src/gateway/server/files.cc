#include "gateway/server/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace cairn::gateway::server {

namespace {
constexpr size_t kMaxSmallFile = 1 << 20;
}  // namespace

Result<std::string> ReadSmallFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path);
    return Status::FromErrno(errno, "open " + path);
  }
  std::string out;
  char buf[4096];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return Status::FromErrno(err, "read " + path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxSmallFile) {
      ::close(fd);
      return Status::IOError(path + " is larger than 1 MiB");
    }
  }
  ::close(fd);
  return out;
}

Status CreateFileDurably(const std::string& path, const std::string& contents, mode_t mode) {
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());  // a leftover of an interrupted creation
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Status::FromErrno(errno, "create " + tmp);
  const ssize_t written = ::write(fd, contents.data(), contents.size());
  // A short write sets no errno: report it as the I/O error it is, not as a stale errno.
  const bool ok = written == static_cast<ssize_t>(contents.size()) && ::fsync(fd) == 0;
  const int err = written >= 0 && written != static_cast<ssize_t>(contents.size()) ? EIO : errno;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    return Status::FromErrno(err, "write " + tmp);
  }
  // link(2), unlike rename(2), fails when the target exists: an existing file is never replaced.
  if (::link(tmp.c_str(), path.c_str()) != 0) {
    const int link_err = errno;
    ::unlink(tmp.c_str());
    if (link_err == EEXIST) return Status::AlreadyExists(path);
    return Status::FromErrno(link_err, "link " + path);
  }
  ::unlink(tmp.c_str());
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Status::FromErrno(errno, "open " + dir);
  const int rc = ::fsync(dfd);
  const int sync_err = errno;
  ::close(dfd);
  if (rc != 0) return Status::FromErrno(sync_err, "fsync " + dir);
  return Status::OK();
}

}  // namespace cairn::gateway::server
