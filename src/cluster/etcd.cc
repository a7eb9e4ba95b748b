// The etcd v3 client over etcd's HTTP/JSON gateway; see etcd.h.
//
// HTTP responses are framed by Boost.Beast's parser reading from PollStream, a non-blocking POSIX
// socket whose every wait is a poll(2) bounded by the call's deadline and woken by a cancel
// eventfd (watches). Requests are written by hand: they are a few fixed headers and a JSON body.
//
// What the gateway of etcd 3.4 does that this file relies on:
// - int64 fields are JSON strings ("revision":"42"); fields at their zero value are left out
//   (no "succeeded" for false, no "kvs" for none, no "type" for a PUT event, no "lease" for 0).
// - Unary errors are {"error":"...","message":"...","code":<gRPC code>} with an HTTP status
//   derived from the code; errors inside a stream are {"error":{"grpc_code":..,"message":..}}.
// - Streaming methods (lease keepalive, watch) wrap every message as {"result":{...}} and end each
//   one with "\n"; chunk boundaries are not message boundaries. A keepalive stream ends after its
//   one answer because the request body ends; a watch stream stays open until either side closes.
// - A keepalive of a lease that does not exist is not an error: it answers TTL 0 (left out).
// - A watch from a compacted revision is first created, then canceled with "compact_revision".
#include "cluster/etcd.h"

#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/system/system_error.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "common/crypto.h"
#include "net/socket.h"

namespace cairn::cluster {

namespace http = boost::beast::http;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

struct EtcdClient::Endpoint {
  std::string url;          // "http://127.0.0.1:2379", for messages
  std::string host;         // for getaddrinfo
  std::string port;         // decimal
  std::string host_header;  // "127.0.0.1:2379"
};

struct EtcdClient::Reply {
  int status = 0;
  std::string body;
};

namespace {

// A unary answer larger than this is refused (a prefix read of everything Cairn keeps in etcd is
// far smaller; etcd itself caps requests at 1.5 MiB by default).
constexpr uint64_t kMaxReplyBytes = 256ull << 20;
// Idle connections kept per endpoint; more are closed when returned.
constexpr size_t kMaxIdlePerEndpoint = 16;
// Bytes asked of the socket per read.
constexpr size_t kReadChunk = 16 * 1024;
// TCP keepalive of a watch's socket: probes after this much silence, this often, this many times.
constexpr int kWatchKeepIdleSeconds = 10;
constexpr int kWatchKeepIntervalSeconds = 5;
constexpr int kWatchKeepCount = 3;
// gRPC status codes that etcd's gateway reports in "code" / "grpc_code".
constexpr int kGrpcInvalidArgument = 3;
constexpr int kGrpcDeadlineExceeded = 4;
constexpr int kGrpcNotFound = 5;
constexpr int kGrpcResourceExhausted = 8;
constexpr int kGrpcOutOfRange = 11;
constexpr int kGrpcUnavailable = 14;

// etcd's JSON gateway carries keys and values as base64 (RFC 4648, padded).
std::string Base64Encode(std::string_view in) {
  return crypto::Base64Encode(std::span(reinterpret_cast<const uint8_t*>(in.data()), in.size()));
}
using crypto::Base64Decode;

// The first key after every key that starts with `prefix`: etcd's range_end for a prefix. "\0"
// (etcd: "every key from key on") when no such key exists ("" or all 0xFF bytes).
std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<uint8_t>(end.back()) != 0xFF) {
      end.back() = static_cast<char>(static_cast<uint8_t>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

// etcd refuses an empty key; the range of every key is key "\0" to range_end "\0".
std::string PrefixStart(std::string_view prefix) { return prefix.empty() ? std::string(1, '\0') : std::string(prefix); }

std::string Int64Text(int64_t v) { return std::to_string(v); }

// Reads fields of the gateway's JSON without throwing: a field that is missing reads as its zero
// value (the gateway leaves those out); one of the wrong type marks the decoder failed.
class Decoder {
 public:
  bool ok() const { return ok_; }

  int64_t Int(const json& obj, const char* name) {
    const json* v = Find(obj, name);
    if (v == nullptr) return 0;
    if (v->is_number_integer()) return v->get<int64_t>();
    if (v->is_string()) {
      const std::string& s = v->get_ref<const std::string&>();
      int64_t out = 0;
      const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
      if (ec == std::errc() && end == s.data() + s.size()) return out;
    }
    ok_ = false;
    return 0;
  }

  bool Bool(const json& obj, const char* name) {
    const json* v = Find(obj, name);
    if (v == nullptr) return false;
    if (v->is_boolean()) return v->get<bool>();
    ok_ = false;
    return false;
  }

  std::string String(const json& obj, const char* name) {
    const json* v = Find(obj, name);
    if (v == nullptr) return {};
    if (v->is_string()) return v->get<std::string>();
    ok_ = false;
    return {};
  }

  std::string Bytes(const json& obj, const char* name) {
    const std::string text = String(obj, name);
    std::optional<std::string> bytes = Base64Decode(text);
    if (!bytes) {
      ok_ = false;
      return {};
    }
    return std::move(*bytes);
  }

  // The member `name` when it is an object (or null when missing), for nested reads.
  const json& Object(const json& obj, const char* name) {
    static const json kNull;
    const json* v = Find(obj, name);
    if (v == nullptr) return kNull;
    if (v->is_object()) return *v;
    ok_ = false;
    return kNull;
  }

  // The member `name` when it is an array (or an empty array when missing).
  const json& Array(const json& obj, const char* name) {
    static const json kEmpty = json::array();
    const json* v = Find(obj, name);
    if (v == nullptr) return kEmpty;
    if (v->is_array()) return *v;
    ok_ = false;
    return kEmpty;
  }

  EtcdKv Kv(const json& obj) {
    EtcdKv kv;
    kv.key = Bytes(obj, "key");
    kv.value = Bytes(obj, "value");
    kv.create_revision = Int(obj, "create_revision");
    kv.mod_revision = Int(obj, "mod_revision");
    kv.version = Int(obj, "version");
    kv.lease = Int(obj, "lease");
    return kv;
  }

  EtcdRange Range(const json& obj) {
    EtcdRange range;
    for (const json& kv : Array(obj, "kvs")) range.kvs.push_back(Kv(kv));
    range.count = Int(obj, "count");
    range.more = Bool(obj, "more");
    range.revision = Revision(obj);
    return range;
  }

  int64_t Revision(const json& obj) { return Int(Object(obj, "header"), "revision"); }

 private:
  const json* Find(const json& obj, const char* name) {
    if (!obj.is_object()) {
      if (!obj.is_null()) ok_ = false;
      return nullptr;
    }
    const auto it = obj.find(name);
    if (it == obj.end() || it->is_null()) return nullptr;
    return &*it;
  }

  bool ok_ = true;
};

Status FromGrpc(int code, std::string_view where, std::string_view message) {
  const std::string text = fmt::format("{}: {} (grpc code {})", where, message, code);
  switch (code) {
    case kGrpcInvalidArgument:
      return Status::InvalidArgument(text);
    case kGrpcDeadlineExceeded:
      return Status::Timeout(text);
    case kGrpcNotFound:
    case kGrpcOutOfRange:  // a revision compacted away (or not yet written)
      return Status::NotFound(text);
    case kGrpcResourceExhausted:
      return Status::Busy(text);
    case kGrpcUnavailable:
      return Status::IOError(text);
    default:
      return Status::Internal(text);
  }
}

// The error an etcd answer carries, if any: {"error":"text","code":N} from a unary method,
// {"error":{"grpc_code":N,"message":"text"}} from a stream.
std::optional<Status> AnswerError(const json& doc, std::string_view where) {
  if (!doc.is_object()) return std::nullopt;
  const auto it = doc.find("error");
  if (it == doc.end()) return std::nullopt;
  Decoder d;
  if (it->is_object()) return FromGrpc(static_cast<int>(d.Int(*it, "grpc_code")), where, d.String(*it, "message"));
  const std::string text = it->is_string() ? it->get<std::string>() : it->dump();
  return FromGrpc(static_cast<int>(d.Int(doc, "code")), where, text);
}

int RemainingMs(Deadline deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, INT32_MAX));
}

using net::UniqueFd;

// Waits until `fd` is ready for `events`, the deadline passes (Timeout) or `cancel_fd` (when >= 0)
// becomes readable (Cancelled). No deadline when `deadline` is nullopt.
Status WaitReady(int fd, short events, std::optional<Deadline> deadline, int cancel_fd) {
  while (true) {
    std::array<pollfd, 2> fds{pollfd{fd, events, 0}, pollfd{cancel_fd, POLLIN, 0}};
    const int timeout = deadline ? RemainingMs(*deadline) : -1;
    const int rc = ::poll(fds.data(), cancel_fd >= 0 ? 2 : 1, timeout);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "poll");
    }
    if (cancel_fd >= 0 && fds[1].revents != 0) return Status::Cancelled("cancelled");
    if (rc == 0) {
      if (deadline && Clock::now() < *deadline) continue;  // woke a little early
      return Status::Timeout("timed out");
    }
    return Status::OK();
  }
}

// A SyncReadStream (as Beast's http::read wants) over a non-blocking socket: each read_some waits
// at most until the deadline, or until the cancel fd is readable.
class PollStream {
 public:
  PollStream(int fd, std::optional<Deadline> deadline, int cancel_fd)
      : fd_(fd), deadline_(deadline), cancel_fd_(cancel_fd) {}

  void set_deadline(std::optional<Deadline> deadline) { deadline_ = deadline; }

  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers, boost::system::error_code& ec) {
    ec = {};
    boost::asio::mutable_buffer target;
    for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it) {
      if (boost::asio::mutable_buffer(*it).size() > 0) {
        target = *it;
        break;
      }
    }
    if (target.size() == 0) return 0;
    while (true) {
      const ssize_t n = ::recv(fd_, target.data(), target.size(), 0);
      if (n > 0) return static_cast<size_t>(n);
      if (n == 0) {
        ec = boost::asio::error::eof;
        return 0;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        ec = boost::system::error_code(errno, boost::system::system_category());
        return 0;
      }
      const Status ready = WaitReady(fd_, POLLIN, deadline_, cancel_fd_);
      if (ready.IsTimeout()) {
        ec = boost::asio::error::timed_out;
        return 0;
      }
      if (ready.IsCancelled()) {
        ec = boost::asio::error::operation_aborted;
        return 0;
      }
      if (!ready.ok()) {
        ec = boost::asio::error::fault;
        return 0;
      }
    }
  }

  // Beast's SyncReadStream concept requires the throwing overload too; this file only calls the
  // one above.
  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers) {
    boost::system::error_code ec;
    const size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

 private:
  int fd_;
  std::optional<Deadline> deadline_;
  int cancel_fd_;
};

// A Status for a Beast read error.
Status ReadError(const boost::system::error_code& ec, std::string_view where) {
  if (ec == boost::asio::error::timed_out) return Status::Timeout(fmt::format("{}: timed out", where));
  if (ec == boost::asio::error::operation_aborted) return Status::Cancelled(fmt::format("{}: cancelled", where));
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) {
    return Status::IOError(fmt::format("{}: connection closed by etcd", where));
  }
  return Status::IOError(fmt::format("{}: {}", where, ec.message()));
}

Status WriteAll(int fd, std::string_view data, Deadline deadline, std::string_view where) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      const Status ready = WaitReady(fd, POLLOUT, deadline, /*cancel_fd=*/-1);
      if (!ready.ok()) return ready.WithContext(where);
      continue;
    }
    return Status::IOError(fmt::format("{}: send: {}", where, std::strerror(errno)));
  }
  return Status::OK();
}

// Opens a non-blocking TCP connection, waiting at most until `deadline`.
Result<UniqueFd> OpenConnection(const EtcdClient::Endpoint& ep, Deadline deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(ep.host.c_str(), ep.port.c_str(), &hints, &found); rc != 0) {
    return Status::IOError(fmt::format("{}: resolve: {}", ep.url, gai_strerror(rc)));
  }
  Status last = Status::IOError(fmt::format("{}: resolve: no addresses", ep.url));
  UniqueFd out;
  for (addrinfo* ai = found; ai != nullptr && out.get() < 0; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
    if (fd.get() < 0) {
      last = Status::IOError(fmt::format("{}: socket: {}", ep.url, std::strerror(errno)));
      continue;
    }
    const int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        last = Status::IOError(fmt::format("{}: connect: {}", ep.url, std::strerror(errno)));
        continue;
      }
      const Status ready = WaitReady(fd.get(), POLLOUT, deadline, /*cancel_fd=*/-1);
      if (!ready.ok()) {
        last = ready.IsTimeout() ? Status::Timeout(fmt::format("{}: connect timed out", ep.url))
                                 : ready.WithContext(ep.url);
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err != 0) {
        last = Status::IOError(fmt::format("{}: connect: {}", ep.url, std::strerror(err)));
        continue;
      }
    }
    out = std::move(fd);
  }
  ::freeaddrinfo(found);
  if (out.get() < 0) return last;
  return out;
}

// True when an idle connection can no longer carry a request: the peer closed it, reset it, or
// sent bytes nobody asked for.
bool PeerClosed(int fd) {
  pollfd p{fd, POLLIN, 0};
  const int rc = ::poll(&p, 1, 0);
  return rc != 0;
}

std::string BuildRequest(const EtcdClient::Endpoint& ep, std::string_view path, std::string_view body) {
  return fmt::format(
      "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nGrpc-Metadata-hasleader: true\r\n"
      "Content-Length: {}\r\n\r\n{}",
      path, ep.host_header, body.size(), body);
}

Result<EtcdClient::Endpoint> ParseEndpoint(std::string_view url) {
  const std::string original(url);
  if (url.starts_with("https://"))
    return Status::NotSupported("etcd endpoint " + original + ": https is not supported");
  if (url.starts_with("http://")) url.remove_prefix(std::string_view("http://").size());
  if (url.ends_with('/')) url.remove_suffix(1);
  if (url.find('/') != std::string_view::npos) {
    return Status::InvalidArgument("etcd endpoint " + original + ": must not have a path");
  }
  EtcdClient::Endpoint ep;
  std::string_view host = url;
  std::string_view port;
  if (url.starts_with('[')) {  // [v6 address]:port
    const size_t close = url.find(']');
    if (close == std::string_view::npos || close + 1 >= url.size() || url[close + 1] != ':') {
      return Status::InvalidArgument("etcd endpoint " + original + ": expected [address]:port");
    }
    host = url.substr(1, close - 1);
    port = url.substr(close + 2);
  } else {
    const size_t colon = url.rfind(':');
    if (colon == std::string_view::npos) {
      return Status::InvalidArgument("etcd endpoint " + original + ": no port");
    }
    host = url.substr(0, colon);
    port = url.substr(colon + 1);
  }
  int port_number = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (host.empty() || ec != std::errc() || end != port.data() + port.size() || port_number <= 0 ||
      port_number > UINT16_MAX) {
    return Status::InvalidArgument("etcd endpoint " + original + ": expected host:port");
  }
  ep.host = std::string(host);
  ep.port = std::string(port);
  ep.host_header = std::string(url);
  ep.url = "http://" + ep.host_header;
  return ep;
}

json KeyRange(std::string_view key, bool prefix) {
  json req = json::object();
  if (prefix) {
    req["key"] = Base64Encode(PrefixStart(key));
    req["range_end"] = Base64Encode(PrefixEnd(key));
  } else {
    req["key"] = Base64Encode(key);
  }
  return req;
}

json PutRequest(std::string_view key, std::string_view value, int64_t lease) {
  json req = json::object();
  req["key"] = Base64Encode(key);
  req["value"] = Base64Encode(value);
  if (lease != 0) req["lease"] = Int64Text(lease);
  return req;
}

json CompareJson(const EtcdCompare& c) {
  json out = json::object();
  out["key"] = Base64Encode(c.key);
  switch (c.op) {
    case EtcdCompare::Op::kEqual:
      out["result"] = "EQUAL";
      break;
    case EtcdCompare::Op::kNotEqual:
      out["result"] = "NOT_EQUAL";
      break;
    case EtcdCompare::Op::kLess:
      out["result"] = "LESS";
      break;
    case EtcdCompare::Op::kGreater:
      out["result"] = "GREATER";
      break;
  }
  switch (c.target) {
    case EtcdCompare::Target::kValue:
      out["target"] = "VALUE";
      out["value"] = Base64Encode(c.value);
      break;
    case EtcdCompare::Target::kVersion:
      out["target"] = "VERSION";
      out["version"] = Int64Text(c.number);
      break;
    case EtcdCompare::Target::kCreateRevision:
      out["target"] = "CREATE";
      out["create_revision"] = Int64Text(c.number);
      break;
    case EtcdCompare::Target::kModRevision:
      out["target"] = "MOD";
      out["mod_revision"] = Int64Text(c.number);
      break;
    case EtcdCompare::Target::kLease:
      out["target"] = "LEASE";
      out["lease"] = Int64Text(c.number);
      break;
  }
  return out;
}

json OpJson(const EtcdOp& op) {
  json out = json::object();
  switch (op.type) {
    case EtcdOp::Type::kPut:
      out["request_put"] = PutRequest(op.key, op.value, op.lease);
      break;
    case EtcdOp::Type::kDelete:
      out["request_delete_range"] = KeyRange(op.key, op.prefix);
      break;
    case EtcdOp::Type::kRange:
      out["request_range"] = KeyRange(op.key, op.prefix);
      break;
  }
  return out;
}

// Parses an answer; a document that is not JSON, or carries an error, becomes a Status.
Result<json> ParseAnswer(std::string_view text, std::string_view where) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Status::Internal(fmt::format("{}: not a JSON object: {}", where, text.substr(0, 200)));
  }
  if (std::optional<Status> error = AnswerError(doc, where)) return *error;
  return doc;
}

// "etcd /v3/kv/put", for messages about an answer (those about a transport name the endpoint too).
std::string Where(std::string_view path) { return fmt::format("etcd {}", path); }

Status Malformed(std::string_view where, const json& doc) {
  return Status::Internal(fmt::format("{}: unexpected answer {}", where, doc.dump().substr(0, 200)));
}

}  // namespace

// ---- EtcdCompare and EtcdOp ----

EtcdCompare EtcdCompare::Value(std::string key, Op op, std::string value) {
  EtcdCompare c;
  c.key = std::move(key);
  c.target = Target::kValue;
  c.op = op;
  c.value = std::move(value);
  return c;
}

namespace {
EtcdCompare NumberCompare(std::string key, EtcdCompare::Target target, EtcdCompare::Op op, int64_t number) {
  EtcdCompare c;
  c.key = std::move(key);
  c.target = target;
  c.op = op;
  c.number = number;
  return c;
}

EtcdOp MakeOp(EtcdOp::Type type, std::string key, bool prefix) {
  EtcdOp op;
  op.type = type;
  op.key = std::move(key);
  op.prefix = prefix;
  return op;
}
}  // namespace

EtcdCompare EtcdCompare::Version(std::string key, Op op, int64_t version) {
  return NumberCompare(std::move(key), Target::kVersion, op, version);
}
EtcdCompare EtcdCompare::CreateRevision(std::string key, Op op, int64_t revision) {
  return NumberCompare(std::move(key), Target::kCreateRevision, op, revision);
}
EtcdCompare EtcdCompare::ModRevision(std::string key, Op op, int64_t revision) {
  return NumberCompare(std::move(key), Target::kModRevision, op, revision);
}
EtcdCompare EtcdCompare::Lease(std::string key, Op op, int64_t lease) {
  return NumberCompare(std::move(key), Target::kLease, op, lease);
}

EtcdOp EtcdOp::Put(std::string key, std::string value, int64_t lease) {
  EtcdOp op = MakeOp(Type::kPut, std::move(key), /*prefix=*/false);
  op.value = std::move(value);
  op.lease = lease;
  return op;
}
EtcdOp EtcdOp::Delete(std::string key) { return MakeOp(Type::kDelete, std::move(key), /*prefix=*/false); }
EtcdOp EtcdOp::DeletePrefix(std::string prefix) { return MakeOp(Type::kDelete, std::move(prefix), /*prefix=*/true); }
EtcdOp EtcdOp::Get(std::string key) { return MakeOp(Type::kRange, std::move(key), /*prefix=*/false); }
EtcdOp EtcdOp::GetPrefix(std::string prefix) { return MakeOp(Type::kRange, std::move(prefix), /*prefix=*/true); }

// ---- EtcdClient: transport ----

EtcdClient::EtcdClient(EtcdOptions options, std::vector<Endpoint> endpoints)
    : options_(std::move(options)), endpoints_(std::move(endpoints)), idle_(endpoints_.size()) {}

EtcdClient::~EtcdClient() {
  for (const std::vector<int>& fds : idle_) {
    for (const int fd : fds) ::close(fd);
  }
}

Result<std::unique_ptr<EtcdClient>> EtcdClient::Connect(EtcdOptions options) {
  if (options.endpoints.empty()) return Status::InvalidArgument("etcd: no endpoints");
  std::vector<Endpoint> endpoints;
  for (const std::string& url : options.endpoints) {
    CAIRN_ASSIGN_OR_RETURN(Endpoint ep, ParseEndpoint(url));
    endpoints.push_back(std::move(ep));
  }
  std::unique_ptr<EtcdClient> client(new EtcdClient(std::move(options), std::move(endpoints)));
  // Any answer from the maintenance service shows an etcd server behind the endpoint.
  CAIRN_ASSIGN_OR_RETURN(const std::string status, client->Call("/v3/maintenance/status", "{}", /*idempotent=*/true));
  CAIRN_ASSIGN_OR_RETURN(const json doc, ParseAnswer(status, "etcd /v3/maintenance/status"));
  if (!doc.contains("version")) return Malformed("etcd /v3/maintenance/status", doc);
  return client;
}

int EtcdClient::TakeIdle(size_t endpoint) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int>& fds = idle_[endpoint];
  while (!fds.empty()) {
    const int fd = fds.back();
    fds.pop_back();
    if (!PeerClosed(fd)) return fd;
    ::close(fd);
  }
  return -1;
}

void EtcdClient::ReturnIdle(size_t endpoint, int fd) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<int>& fds = idle_[endpoint];
    if (fds.size() < kMaxIdlePerEndpoint) {
      fds.push_back(fd);
      return;
    }
  }
  ::close(fd);
}

Result<EtcdClient::Reply> EtcdClient::Exchange(size_t endpoint, std::string_view request, Deadline deadline,
                                               bool* sent) {
  const Endpoint& ep = endpoints_[endpoint];
  UniqueFd fd(TakeIdle(endpoint));
  if (fd.get() < 0) {
    const Deadline connect_deadline = std::min(deadline, Clock::now() + options_.connect_timeout);
    CAIRN_ASSIGN_OR_RETURN(fd, OpenConnection(ep, connect_deadline));
  }
  CAIRN_RETURN_IF_ERROR(WriteAll(fd.get(), request, deadline, ep.url));
  *sent = true;

  PollStream stream(fd.get(), deadline, /*cancel_fd=*/-1);
  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxReplyBytes);
  boost::system::error_code ec;
  http::read(stream, buffer, parser, ec);
  if (ec) return ReadError(ec, ep.url);
  Reply reply;
  reply.status = static_cast<int>(parser.get().result_int());
  const bool reusable = parser.get().keep_alive() && buffer.size() == 0;
  reply.body = std::move(parser.get().body());
  if (reusable) ReturnIdle(endpoint, fd.Release());
  return reply;
}

Result<std::string> EtcdClient::Call(std::string_view path, const std::string& body, bool idempotent) {
  const Deadline deadline = Clock::now() + options_.request_timeout;
  const size_t n = endpoints_.size();
  const size_t first = preferred_.load(std::memory_order_relaxed) % n;
  std::string failures;  // what each endpoint tried said, for the final error
  Status last;
  for (size_t i = 0; i < n && Clock::now() < deadline; ++i) {
    const size_t index = (first + i) % n;
    const Endpoint& ep = endpoints_[index];
    bool sent = false;
    Result<Reply> reply = Exchange(index, BuildRequest(ep, path, body), deadline, &sent);
    if (reply.ok()) {
      preferred_.store(index, std::memory_order_relaxed);
      if (reply->status == 200) return std::move(reply->body);
      // etcd refused; the body says why, in gRPC terms.
      const std::string where = fmt::format("etcd {}{}", ep.url, path);
      const json doc = json::parse(reply->body, nullptr, /*allow_exceptions=*/false);
      std::optional<Status> error = doc.is_discarded() ? std::nullopt : AnswerError(doc, where);
      if (!error) {
        error = Status::Internal(fmt::format("{}: HTTP {}: {}", where, reply->status, reply->body.substr(0, 200)));
      }
      // Unavailable (no leader, shutting down): another member may do better, if asking again is safe.
      if (!idempotent || !error->IsIOError()) return *error;
      last = *error;
    } else {
      last = reply.status();
      if (sent && !idempotent) return last.WithContext(fmt::format("etcd {} (the write may have been applied)", path));
    }
    if (!failures.empty()) failures += "; ";
    failures += last.message();
  }
  const std::string message = fmt::format("etcd {}: no endpoint answered: {}", path, failures);
  if (last.IsTimeout() || Clock::now() >= deadline) return Status::Timeout(message);
  return Status::IOError(message);
}

// ---- EtcdClient: the API ----

Result<int64_t> EtcdClient::Put(std::string_view key, std::string_view value, int64_t lease) {
  constexpr std::string_view kPath = "/v3/kv/put";
  CAIRN_ASSIGN_OR_RETURN(const std::string text, Call(kPath, PutRequest(key, value, lease).dump(), false));
  CAIRN_ASSIGN_OR_RETURN(const json doc, ParseAnswer(text, Where(kPath)));
  Decoder d;
  const int64_t revision = d.Revision(doc);
  if (!d.ok()) return Malformed(Where(kPath), doc);
  return revision;
}

namespace {
Result<EtcdRange> DecodeRange(const std::string& text, std::string_view where) {
  CAIRN_ASSIGN_OR_RETURN(const json doc, ParseAnswer(text, where));
  Decoder d;
  EtcdRange range = d.Range(doc);
  if (!d.ok()) return Malformed(where, doc);
  return range;
}

Result<EtcdDeleted> DecodeDeleted(const std::string& text, std::string_view where) {
  CAIRN_ASSIGN_OR_RETURN(const json doc, ParseAnswer(text, where));
  Decoder d;
  EtcdDeleted out;
  out.deleted = d.Int(doc, "deleted");
  out.revision = d.Revision(doc);
  if (!d.ok()) return Malformed(where, doc);
  return out;
}
}  // namespace

Result<EtcdRange> EtcdClient::Get(std::string_view key) {
  constexpr std::string_view kPath = "/v3/kv/range";
  CAIRN_ASSIGN_OR_RETURN(const std::string text, Call(kPath, KeyRange(key, /*prefix=*/false).dump(), true));
  return DecodeRange(text, Where(kPath));
}

Result<EtcdRange> EtcdClient::GetPrefix(std::string_view prefix, int64_t limit) {
  constexpr std::string_view kPath = "/v3/kv/range";
  json req = KeyRange(prefix, /*prefix=*/true);
  if (limit > 0) req["limit"] = Int64Text(limit);
  CAIRN_ASSIGN_OR_RETURN(const std::string text, Call(kPath, req.dump(), true));
  return DecodeRange(text, Where(kPath));
}

Result<EtcdDeleted> EtcdClient::Delete(std::string_view key) {
  constexpr std::string_view kPath = "/v3/kv/deleterange";
  CAIRN_ASSIGN_OR_RETURN(const std::string text, Call(kPath, KeyRange(key, /*prefix=*/false).dump(), false));
  return DecodeDeleted(text, Where(kPath));
}

Result<EtcdDeleted> EtcdClient::DeletePrefix(std::string_view prefix) {
  constexpr std::string_view kPath = "/v3/kv/deleterange";
  CAIRN_ASSIGN_OR_RETURN(const std::string text, Call(kPath, KeyRange(prefix, /*prefix=*/true).dump(), false));
  return DecodeDeleted(text, Where(kPath));
}

Result<EtcdTxnResult> EtcdClient::Txn(const std::vector<EtcdCompare>& compares, const std::vector<EtcdOp>& success,
                                      const std::vector<EtcdOp>& failure) {
  constexpr std::string_view kPath = "/v3/kv/txn";
  json req = json::object();
  json& compare = req["compare"] = json::array();
  for (const EtcdCompare& c : compares) compare.push_back(CompareJson(c));
  json& on_success = req["success"] = json::array();
  for (const EtcdOp& op : success) on_success.push_back(OpJson(op));
  json& on_failure = req["failure"] = json::array();
  for (const EtcdOp& op : failure) on_failure.push_back(OpJson(op));
  CAIRN_ASSIGN_OR_RETURN(const std::string text, Call(kPath, req.dump(), false));
  CAIRN_ASSIGN_OR_RETURN(const json doc, ParseAnswer(text, Where(kPath)));
  Decoder d;
  EtcdTxnResult out;
  out.succeeded = d.Bool(doc, "succeeded");
  out.revision = d.Revision(doc);
  for (const json& response : d.Array(doc, "responses")) {
    const json& range = d.Object(response, "response_range");
    if (range.is_object()) out.ranges.push_back(d.Range(range));
  }
  if (!d.ok()) return Malformed(Where(kPath), doc);
  return out;
}

Result<EtcdLease> EtcdClient::LeaseGrant(int64_t ttl_seconds) {
  constexpr std::string_view kPath = "/v3/lease/grant";
  json req = json::object();
  req["TTL"] = Int64Text(ttl_seconds);
  CAIRN_ASSIGN_OR_RETURN(const std::string text, Call(kPath, req.dump(), false));
  CAIRN_ASSIGN_OR_RETURN(const json doc, ParseAnswer(text, Where(kPath)));
  Decoder d;
  EtcdLease lease;
  lease.id = d.Int(doc, "ID");
  lease.ttl_seconds = d.Int(doc, "TTL");
  const std::string refusal = d.String(doc, "error");  // LeaseGrantResponse has an error field of its own
  if (!refusal.empty()) return Status::Internal(fmt::format("{}: {}", Where(kPath), refusal));
  if (!d.ok() || lease.id == 0) return Malformed(Where(kPath), doc);
  return lease;
}

Result<int64_t> EtcdClient::LeaseKeepAlive(int64_t id) {
  constexpr std::string_view kPath = "/v3/lease/keepalive";
  json req = json::object();
  req["ID"] = Int64Text(id);
  CAIRN_ASSIGN_OR_RETURN(const std::string text, Call(kPath, req.dump(), true));
  // A stream of one message: {"result":{...}}\n.
  CAIRN_ASSIGN_OR_RETURN(const json doc, ParseAnswer(text, Where(kPath)));
  Decoder d;
  const json& result = d.Object(doc, "result");
  const int64_t ttl = d.Int(result, "TTL");
  if (!d.ok() || !result.is_object()) return Malformed(Where(kPath), doc);
  if (ttl <= 0) return Status::NotFound(fmt::format("etcd lease {:x} has expired or was revoked", id));
  return ttl;
}

Status EtcdClient::LeaseRevoke(int64_t id) {
  constexpr std::string_view kPath = "/v3/lease/revoke";
  json req = json::object();
  req["ID"] = Int64Text(id);
  CAIRN_ASSIGN_OR_RETURN(const std::string text, Call(kPath, req.dump(), false));
  return ParseAnswer(text, Where(kPath)).status();
}

Result<int64_t> EtcdClient::LeaseTimeToLive(int64_t id) {
  constexpr std::string_view kPath = "/v3/lease/timetolive";
  json req = json::object();
  req["ID"] = Int64Text(id);
  CAIRN_ASSIGN_OR_RETURN(const std::string text, Call(kPath, req.dump(), true));
  CAIRN_ASSIGN_OR_RETURN(const json doc, ParseAnswer(text, Where(kPath)));
  Decoder d;
  const int64_t ttl = d.Int(doc, "TTL");
  if (!d.ok()) return Malformed(Where(kPath), doc);
  if (ttl < 0) return Status::NotFound(fmt::format("etcd lease {:x} has expired or was revoked", id));
  return ttl;
}

Status EtcdClient::Compact(int64_t revision) {
  constexpr std::string_view kPath = "/v3/kv/compaction";
  json req = json::object();
  req["revision"] = Int64Text(revision);
  CAIRN_ASSIGN_OR_RETURN(const std::string text, Call(kPath, req.dump(), false));
  return ParseAnswer(text, Where(kPath)).status();
}

// ---- Watch ----

struct EtcdWatch::Stream {
  std::string where;  // "etcd http://host:port/v3/watch", for messages
  UniqueFd fd;
  UniqueFd cancel;  // an eventfd: readable once Cancel wants the reader to stop
  boost::beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  std::string pending;  // body bytes not yet split into messages

  // Appends the next body bytes to `pending`. IOError when the body has ended, Timeout at the
  // deadline (none: wait for ever), Cancelled when the cancel fd fires.
  Status ReadMore(std::optional<Deadline> deadline) {
    PollStream stream(fd.get(), deadline, cancel.get());
    std::array<char, kReadChunk> chunk;
    while (true) {
      if (parser.is_done()) return Status::IOError(where + ": the watch stream ended");
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      boost::system::error_code ec;
      http::read_some(stream, buffer, parser, ec);
      if (ec == http::error::need_buffer) ec = {};
      const size_t got = chunk.size() - parser.get().body().size;
      pending.append(chunk.data(), got);
      if (ec) return ReadError(ec, where);
      if (got > 0) return Status::OK();
    }
  }

  // Takes the next complete message (one line) out of `pending`.
  std::optional<std::string> NextMessage() {
    while (true) {
      const size_t newline = pending.find('\n');
      if (newline == std::string::npos) return std::nullopt;
      std::string line = pending.substr(0, newline);
      pending.erase(0, newline + 1);
      if (!line.empty()) return line;
    }
  }
};

namespace {

// A watch message's "result", or the Status it carries instead.
Result<json> WatchResult(std::string_view line, std::string_view where) {
  CAIRN_ASSIGN_OR_RETURN(const json doc, ParseAnswer(line, where));
  const auto it = doc.find("result");
  if (it == doc.end() || !it->is_object()) return Malformed(where, doc);
  return *it;
}

void SetWatchKeepAlive(int fd) {
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &kWatchKeepIdleSeconds, sizeof(kWatchKeepIdleSeconds));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &kWatchKeepIntervalSeconds, sizeof(kWatchKeepIntervalSeconds));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &kWatchKeepCount, sizeof(kWatchKeepCount));
}

// Opens the watch stream on one endpoint and reads until etcd confirms the watch was created.
Result<std::unique_ptr<EtcdWatch::Stream>> OpenWatch(const EtcdClient::Endpoint& ep, std::string_view body,
                                                     Deadline deadline, Deadline connect_deadline) {
  auto stream = std::make_unique<EtcdWatch::Stream>();
  stream->where = fmt::format("etcd {}/v3/watch", ep.url);
  CAIRN_ASSIGN_OR_RETURN(stream->fd, OpenConnection(ep, connect_deadline));
  SetWatchKeepAlive(stream->fd.get());
  stream->cancel = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (stream->cancel.get() < 0) return Status::IOError(fmt::format("eventfd: {}", std::strerror(errno)));
  CAIRN_RETURN_IF_ERROR(WriteAll(stream->fd.get(), BuildRequest(ep, "/v3/watch", body), deadline, ep.url));

  stream->parser.body_limit(boost::none);  // a watch's body never ends
  PollStream poll_stream(stream->fd.get(), deadline, /*cancel_fd=*/-1);
  boost::system::error_code ec;
  http::read_header(poll_stream, stream->buffer, stream->parser, ec);
  if (ec) return ReadError(ec, stream->where);
  const unsigned status = stream->parser.get().result_int();
  if (status != 200) {  // a refusal: read it whole
    while (!stream->parser.is_done() && stream->pending.size() < kReadChunk) {
      CAIRN_RETURN_IF_ERROR(stream->ReadMore(deadline));
    }
    const json doc = json::parse(stream->pending, nullptr, /*allow_exceptions=*/false);
    std::optional<Status> error = doc.is_discarded() ? std::nullopt : AnswerError(doc, stream->where);
    if (error) return *error;
    return Status::Internal(fmt::format("{}: HTTP {}: {}", stream->where, status, stream->pending.substr(0, 200)));
  }
  while (true) {
    while (std::optional<std::string> line = stream->NextMessage()) {
      CAIRN_ASSIGN_OR_RETURN(const json result, WatchResult(*line, stream->where));
      Decoder d;
      const bool created = d.Bool(result, "created");
      const bool canceled = d.Bool(result, "canceled");
      if (!d.ok()) return Malformed(stream->where, result);
      if (created && canceled) {
        return Status::InvalidArgument(
            fmt::format("{}: etcd refused the watch: {}", stream->where, d.String(result, "cancel_reason")));
      }
      if (created) return stream;
    }
    CAIRN_RETURN_IF_ERROR(stream->ReadMore(deadline));
  }
}

}  // namespace

Result<std::unique_ptr<EtcdWatch>> EtcdClient::Watch(std::string_view prefix, int64_t start_revision,
                                                     std::function<void(const EtcdWatchEvent&)> on_event,
                                                     std::function<void(const Status&)> on_error) {
  json create = KeyRange(prefix, /*prefix=*/true);
  if (start_revision > 0) create["start_revision"] = Int64Text(start_revision);
  json req = json::object();
  req["create_request"] = std::move(create);
  const std::string body = req.dump();

  const Deadline deadline = Clock::now() + options_.request_timeout;
  const size_t n = endpoints_.size();
  const size_t first = preferred_.load(std::memory_order_relaxed) % n;
  std::string failures;
  Status last;
  for (size_t i = 0; i < n && Clock::now() < deadline; ++i) {
    const size_t index = (first + i) % n;
    Result<std::unique_ptr<EtcdWatch::Stream>> stream =
        OpenWatch(endpoints_[index], body, deadline, std::min(deadline, Clock::now() + options_.connect_timeout));
    if (stream.ok()) {
      preferred_.store(index, std::memory_order_relaxed);
      return std::unique_ptr<EtcdWatch>(new EtcdWatch(std::move(*stream), std::move(on_event), std::move(on_error)));
    }
    last = stream.status();
    // A refusal other than Unavailable would be the same on every member.
    if (!last.IsIOError() && !last.IsTimeout()) return last;
    if (!failures.empty()) failures += "; ";
    failures += last.message();
  }
  const std::string message = fmt::format("etcd /v3/watch: no endpoint answered: {}", failures);
  if (last.IsTimeout() || Clock::now() >= deadline) return Status::Timeout(message);
  return Status::IOError(message);
}

EtcdWatch::EtcdWatch(std::unique_ptr<Stream> stream, std::function<void(const EtcdWatchEvent&)> on_event,
                     std::function<void(const Status&)> on_error)
    : stream_(std::move(stream)), on_event_(std::move(on_event)), on_error_(std::move(on_error)) {
  thread_ = std::thread([this] { Run(); });
}

EtcdWatch::~EtcdWatch() { Cancel(); }

void EtcdWatch::Cancel() {
  std::lock_guard<std::mutex> lock(cancel_mu_);
  if (!thread_.joinable()) return;
  stopping_.store(true);
  const uint64_t one = 1;
  if (::write(stream_->cancel.get(), &one, sizeof(one)) < 0) {
    // Only EAGAIN is possible (the counter is full), and then the reader is woken already.
  }
  thread_.join();
}

void EtcdWatch::Run() {
  const auto finish = [this](const Status& status) {
    stream_->fd.Reset();
    if (!stopping_.load() && on_error_) on_error_(status);
  };
  while (true) {
    while (std::optional<std::string> line = stream_->NextMessage()) {
      Result<json> result = WatchResult(*line, stream_->where);
      if (!result.ok()) return finish(result.status());
      Decoder d;
      if (d.Bool(*result, "canceled")) {
        const int64_t compact_revision = d.Int(*result, "compact_revision");
        if (compact_revision > 0) {
          return finish(Status::NotFound(
              fmt::format("{}: the history the watch asked for was compacted; the oldest revision left is {}",
                          stream_->where, compact_revision)));
        }
        return finish(Status::Internal(
            fmt::format("{}: etcd canceled the watch: {}", stream_->where, d.String(*result, "cancel_reason"))));
      }
      std::vector<EtcdWatchEvent> events;
      for (const json& e : d.Array(*result, "events")) {
        EtcdWatchEvent event;
        const std::string type = d.String(e, "type");  // left out for PUT, the zero value
        event.type = type == "DELETE" ? EtcdWatchEvent::Type::kDelete : EtcdWatchEvent::Type::kPut;
        if (!type.empty() && type != "PUT" && type != "DELETE") return finish(Malformed(stream_->where, e));
        event.kv = d.Kv(d.Object(e, "kv"));
        event.revision = event.kv.mod_revision;
        events.push_back(std::move(event));
      }
      if (!d.ok()) return finish(Malformed(stream_->where, *result));
      for (const EtcdWatchEvent& event : events) {
        if (stopping_.load()) return;
        if (on_event_) on_event_(event);
      }
    }
    const Status read = stream_->ReadMore(std::nullopt);
    if (!read.ok()) return finish(read);
  }
}

}  // namespace cairn::cluster
