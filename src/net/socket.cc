#include "net/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "fmt/format.h"

namespace cairn::net {
namespace {

struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;
};

Result<Address> Parse(std::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return Status::InvalidArgument(fmt::format("address {}: no port", address));
  std::string host(address.substr(0, colon));
  const std::string_view port_text = address.substr(colon + 1);
  uint16_t port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size()) {
    return Status::InvalidArgument(fmt::format("address {}: bad port", address));
  }
  Address out;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    if (::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &a6->sin6_addr) != 1) {
      return Status::InvalidArgument(fmt::format("address {}: bad IPv6 host", address));
    }
    out.length = sizeof(sockaddr_in6);
    return out;
  }
  if (host == "localhost") host = "127.0.0.1";
  auto* a4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  a4->sin_family = AF_INET;
  a4->sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &a4->sin_addr) != 1) {
    return Status::InvalidArgument(fmt::format("address {}: the host must be a numeric address", address));
  }
  out.length = sizeof(sockaddr_in);
  return out;
}

std::string Format(const sockaddr_storage& ss) {
  char text[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET6) {
    const auto* a6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a6->sin6_addr, text, sizeof text);
    return fmt::format("[{}]:{}", text, ntohs(a6->sin6_port));
  }
  const auto* a4 = reinterpret_cast<const sockaddr_in*>(&ss);
  ::inet_ntop(AF_INET, &a4->sin_addr, text, sizeof text);
  return fmt::format("{}:{}", text, ntohs(a4->sin_port));
}

}  // namespace

void UniqueFd::Reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Result<std::pair<UniqueFd, std::string>> Listen(std::string_view address) {
  CAIRN_ASSIGN_OR_RETURN(Address addr, Parse(address));
  UniqueFd fd(::socket(addr.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Status::FromErrno(errno, "socket");
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr.storage), addr.length) != 0) {
    return Status::FromErrno(errno, fmt::format("bind {}", address));
  }
  if (::listen(fd.get(), 256) != 0) return Status::FromErrno(errno, "listen");
  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &length) != 0) {
    return Status::FromErrno(errno, "getsockname");
  }
  return std::pair<UniqueFd, std::string>(std::move(fd), Format(bound));
}

Result<UniqueFd> Connect(std::string_view address, std::chrono::milliseconds timeout) {
  CAIRN_ASSIGN_OR_RETURN(Address addr, Parse(address));
  UniqueFd fd(::socket(addr.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return Status::FromErrno(errno, "socket");
  const int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr.storage), addr.length) != 0) {
    if (errno != EINPROGRESS) return Status::IOError(fmt::format("connect {}: {}", address, std::strerror(errno)));
    pollfd p{fd.get(), POLLOUT, 0};
    int rc;
    do {
      rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
    } while (rc < 0 && errno == EINTR);
    if (rc == 0) return Status::Timeout(fmt::format("connect {}: timed out", address));
    int err = 0;
    socklen_t len = sizeof err;
    if (rc < 0)
      err = errno;
    else if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0)
      err = errno;
    if (err != 0) return Status::IOError(fmt::format("connect {}: {}", address, std::strerror(err)));
  }
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) return Status::FromErrno(errno, "fcntl");
  return fd;
}

Status SendAll(int fd, std::initializer_list<std::string_view> pieces) {
  constexpr size_t kMaxPieces = 8;
  std::array<iovec, kMaxPieces> iov{};
  size_t count = 0;
  for (std::string_view p : pieces) {
    if (p.empty()) continue;
    if (count == kMaxPieces) return Status::InvalidArgument("send: too many pieces");
    iov[count++] = iovec{const_cast<char*>(p.data()), p.size()};
  }
  size_t first = 0;
  while (first < count) {
    msghdr msg{};
    msg.msg_iov = &iov[first];
    msg.msg_iovlen = count - first;
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IOError(fmt::format("send: {}", std::strerror(errno)));
    }
    // Skip what went out: whole pieces, then the start of the next one.
    while (first < count && static_cast<size_t>(n) >= iov[first].iov_len) {
      n -= static_cast<ssize_t>(iov[first].iov_len);
      ++first;
    }
    if (first < count) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + n;
      iov[first].iov_len -= static_cast<size_t>(n);
    }
  }
  return Status::OK();
}

Result<size_t> ReceiveSome(int fd, char* buffer, size_t capacity) {
  while (true) {
    const ssize_t n = ::recv(fd, buffer, capacity, 0);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::Timeout("recv timed out");
    return Status::IOError(fmt::format("recv: {}", std::strerror(errno)));
  }
}

void Shutdown(int fd) {
  if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
}

namespace {
void SetTimeout(int fd, int option, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv);
}
}  // namespace

void SetReceiveTimeout(int fd, std::chrono::milliseconds timeout) { SetTimeout(fd, SO_RCVTIMEO, timeout); }
void SetSendTimeout(int fd, std::chrono::milliseconds timeout) { SetTimeout(fd, SO_SNDTIMEO, timeout); }

}  // namespace cairn::net
