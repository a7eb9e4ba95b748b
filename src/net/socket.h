// Blocking TCP sockets for the internal RPC: an owned descriptor, address parsing, listening,
// connecting with a deadline, and whole-buffer sends.
//
// The RPC uses a thread per connection (docs/design/cluster.md, "Internal RPC"), so sockets stay
// blocking once connected; a reader blocked in recv is woken by Shutdown from another thread.
// Thread-safety: functions are thread-safe; a UniqueFd is a value owned by one holder.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "common/result.h"
#include "common/status.h"

namespace cairn::net {

// Owns a file descriptor and closes it.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  // Gives up ownership: the caller closes the descriptor.
  int Release() { return std::exchange(fd_, -1); }
  void Reset();

 private:
  int fd_ = -1;
};

// Listens on "HOST:PORT" ("[v6]:PORT" for IPv6; port 0 picks a free one). Returns the socket and
// the address it is bound to.
Result<std::pair<UniqueFd, std::string>> Listen(std::string_view address);
// Connects to "HOST:PORT" (numeric hosts and "localhost"), waiting at most `timeout`. The socket
// returned is blocking, with TCP_NODELAY.
Result<UniqueFd> Connect(std::string_view address, std::chrono::milliseconds timeout);
// Sends all of the pieces (at most 8), in order, with as few system calls as the socket allows
// (sendmsg). IOError when the peer is gone.
Status SendAll(int fd, std::initializer_list<std::string_view> pieces);
// Receives up to `capacity` bytes; 0 means the peer closed. Retries on EINTR.
Result<size_t> ReceiveSome(int fd, char* buffer, size_t capacity);
// Makes both directions fail at once; a thread blocked in recv or send returns.
void Shutdown(int fd);
// Bounds a blocking recv (SO_RCVTIMEO) or send (SO_SNDTIMEO); zero: no bound. A recv that times
// out returns Timeout.
void SetReceiveTimeout(int fd, std::chrono::milliseconds timeout);
void SetSendTimeout(int fd, std::chrono::milliseconds timeout);

}  // namespace cairn::net
