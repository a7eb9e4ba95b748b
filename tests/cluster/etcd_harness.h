// EtcdHarness: a real single-member etcd (Debian's etcd-server, /usr/bin/etcd) for tests.
//
// Start runs etcd on free loopback ports with a fresh data directory and waits, at most
// kStartTimeout, until it answers GET /health. Its log (errors only) is kept in the data
// directory and quoted when it fails to start. Stop kills it (SIGKILL) and reaps it; Pause and
// Resume stop and continue it (SIGSTOP, SIGCONT), for tests of a hung server. etcd also dies
// with the test process (PR_SET_PDEATHSIG).
//
// A missing etcd is an error that says how to install it: tests that need etcd fail, never skip.
// The binary is $CAIRN_ETCD_BIN when set, else /usr/bin/etcd.
//
// Raft timing is shortened (heartbeat 20 ms, election 200 ms) so that etcd elects itself at once
// and its minimum lease TTL is 1 s instead of 2 s.
//
// Header-only because tests/CMakeLists.txt builds one binary per *_test.cc.
// Thread-safety: none; drive it from the test's main thread.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "test_util.h"

namespace cairn::test {

// A loopback endpoint that refuses connections for as long as the object lives: a port bound and
// never listened on, so no other process (another test's etcd) can take it meanwhile, as it
// could a port found free and released. The "dead endpoint" of failover tests.
class DeadEndpoint {
 public:
  DeadEndpoint() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      url_ = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
    }
  }
  ~DeadEndpoint() {
    if (fd_ >= 0) ::close(fd_);
  }
  DeadEndpoint(const DeadEndpoint&) = delete;
  DeadEndpoint& operator=(const DeadEndpoint&) = delete;
  // "http://127.0.0.1:<port>"; empty if no port could be bound.
  const std::string& url() const { return url_; }

 private:
  int fd_;
  std::string url_;
};

// A loopback TCP port nothing listens on at the moment of the call (bound to port 0, then
// closed), for a process to listen on next.
inline uint16_t FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

class EtcdHarness {
 public:
  static constexpr std::chrono::seconds kStartTimeout{15};

  EtcdHarness() = default;
  ~EtcdHarness() { Stop(); }
  EtcdHarness(const EtcdHarness&) = delete;
  EtcdHarness& operator=(const EtcdHarness&) = delete;

  static std::string Binary() {
    const char* bin = std::getenv("CAIRN_ETCD_BIN");
    return bin != nullptr && *bin != '\0' ? bin : "/usr/bin/etcd";
  }

  Status Start() {
    const std::string bin = Binary();
    if (::access(bin.c_str(), X_OK) != 0) {
      return Status::NotFound(
          "no etcd at " + bin +
          ": run scripts/install-deps.sh (it installs Debian's etcd-server), or set CAIRN_ETCD_BIN");
    }
    client_port_ = FreeLoopbackPort();
    const uint16_t peer_port = FreeLoopbackPort();
    if (client_port_ == 0 || peer_port == 0 || client_port_ == peer_port) {
      return Status::IOError("no free loopback port for etcd");
    }
    const std::string client_url = endpoint();
    const std::string peer_url = "http://127.0.0.1:" + std::to_string(peer_port);
    log_path_ = dir_.path() + "/etcd.log";
    const std::vector<std::string> args = {
        bin,
        "--name=cairn-test",
        "--data-dir=" + dir_.path() + "/data",
        "--listen-client-urls=" + client_url,
        "--advertise-client-urls=" + client_url,
        "--listen-peer-urls=" + peer_url,
        "--initial-advertise-peer-urls=" + peer_url,
        "--initial-cluster=cairn-test=" + peer_url,
        "--initial-cluster-state=new",
        "--heartbeat-interval=20",
        "--election-timeout=200",
        "--logger=zap",
        "--log-outputs=stderr",
        "--log-level=error",
    };
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);

    const pid_t pid = ::fork();
    if (pid < 0) return Status::FromErrno(errno, "fork");
    if (pid == 0) {  // the child: only async-signal-safe calls until exec
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int log = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (log >= 0) {
        ::dup2(log, STDOUT_FILENO);
        ::dup2(log, STDERR_FILENO);
      }
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    pid_ = pid;

    const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int wstatus = 0;
      if (::waitpid(pid_, &wstatus, WNOHANG) == pid_) {
        pid_ = -1;
        return Status::IOError("etcd exited at start-up (status " + std::to_string(wstatus) + "): " + LogTail());
      }
      if (Healthy()) return Status::OK();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    Stop();
    return Status::Timeout("etcd did not answer /health within 15 s: " + LogTail());
  }

  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int wstatus = 0;
    ::waitpid(pid_, &wstatus, 0);
    pid_ = -1;
  }
  // Returns once etcd is stopped: SIGSTOP is delivered asynchronously, and a thread of etcd
  // still running on the other core could answer one more request; waitpid(WUNTRACED) reports
  // the stop only when every thread of the child has stopped.
  void Pause() const {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGSTOP);
    int wstatus = 0;
    while (::waitpid(pid_, &wstatus, WUNTRACED) < 0 && errno == EINTR) {
    }
  }
  void Resume() const {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
  }

  // "http://127.0.0.1:<port>"
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(client_port_); }

 private:
  // One GET /health over a fresh connection, waiting at most 1 s.
  bool Healthy() const {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    timeval tv{};
    tv.tv_sec = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(client_port_);
    std::string answer;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      const std::string request = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
      if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
        char buf[4096];
        ssize_t n;
        while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) answer.append(buf, static_cast<size_t>(n));
      }
    }
    ::close(fd);
    return answer.find("\"health\":\"true\"") != std::string::npos;
  }

  std::string LogTail() const {
    std::ifstream in(log_path_);
    std::stringstream text;
    text << in.rdbuf();
    const std::string all = text.str();
    constexpr size_t kTail = 2000;
    return all.size() > kTail ? all.substr(all.size() - kTail) : all;
  }

  TempDir dir_;
  std::string log_path_;
  uint16_t client_port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace cairn::test
