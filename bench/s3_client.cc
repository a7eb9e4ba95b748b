// The blocking S3 client; see s3_client.h.
//
// Framing follows RFC 9112 section 6.3: a response to HEAD, and 1xx, 204 and 304 responses have
// no body; otherwise Transfer-Encoding: chunked, then Content-Length, then "until the connection
// closes" decide where the body ends. 1xx responses other than 101 are skipped.
#include "bench/s3_client.h"

#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "common/crypto.h"
#include "gateway/sigv4_sign.h"
#include "gateway/text.h"

namespace cairn::bench {
namespace {

// Size of the receive buffer; responses whose headers need more grow it up to
// ClientOptions::max_header_bytes plus this.
constexpr size_t kReadBufferBytes = 256 * 1024;
// A read asks for at least this much free space (compacting or growing the buffer first).
constexpr size_t kMinReadSpace = 16 * 1024;
// Piece size in which a BodySource is asked for bytes.
constexpr size_t kBodySourceChunk = 1024 * 1024;
constexpr std::string_view kEmptySha256Hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr std::string_view kCrlf = "\r\n";
constexpr uint16_t kDefaultHttpPort = 80;
// Responses with this status or above keep their body (see Request::discard_body), up to
// kMaxKeptErrorBody bytes.
constexpr int kFirstErrorStatus = 400;
constexpr size_t kMaxKeptErrorBody = 1024 * 1024;

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view TrimView(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Parses a whole string of decimal digits (at most 18); nullopt otherwise.
std::optional<uint64_t> ParseDecimal(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

// Parses a chunk-size line's hex number (at most 15 digits); nullopt otherwise.
std::optional<uint64_t> ParseHex(std::string_view s) {
  if (s.empty() || s.size() > 15) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    const int d = (c >= '0' && c <= '9')   ? c - '0'
                  : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                  : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                           : -1;
    if (d < 0) return std::nullopt;
    v = v * 16 + static_cast<uint64_t>(d);
  }
  return v;
}

// True when the comma-separated header value holds `token` (case-insensitive).
bool HasToken(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    if (ToLower(TrimView(value.substr(0, comma))) == token) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}


bool IsHeadMethod(std::string_view method) { return method == "HEAD"; }

Status SetTimeout(int fd, int option, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  if (setsockopt(fd, SOL_SOCKET, option, &tv, sizeof(tv)) != 0) return Status::FromErrno(errno, "setsockopt timeout");
  return Status::OK();
}

}  // namespace

std::optional<std::string_view> Response::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return std::string_view(v);
  }
  return std::nullopt;
}

std::string Response::ErrorCode() const { return XmlText(body, "Code"); }
std::string Response::ErrorMessage() const { return XmlText(body, "Message"); }

std::string XmlText(std::string_view xml, std::string_view name) {
  const std::string open = fmt::format("<{}>", name);
  const std::string close = fmt::format("</{}>", name);
  const size_t start = xml.find(open);
  if (start == std::string_view::npos) return {};
  const size_t end = xml.find(close, start + open.size());
  if (end == std::string_view::npos) return {};
  std::string_view text = xml.substr(start + open.size(), end - start - open.size());
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const size_t amp = text.find('&');
    out.append(text.substr(0, amp));
    if (amp == std::string_view::npos) break;
    text.remove_prefix(amp);
    const size_t semi = text.find(';');
    const std::string_view entity = text.substr(1, semi == std::string_view::npos ? 0 : semi - 1);
    static constexpr std::pair<std::string_view, char> kNamed[] = {
        {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
    bool decoded = false;
    for (const auto& [n, c] : kNamed) {
      if (entity == n) {
        out.push_back(c);
        decoded = true;
      }
    }
    if (!decoded && entity.size() > 1 && entity.front() == '#') {
      const bool hex = entity[1] == 'x';
      const std::optional<uint64_t> cp = hex ? ParseHex(entity.substr(2)) : ParseDecimal(entity.substr(1));
      if (cp && *cp > 0 && *cp <= 0x10FFFF) {
        gateway::AppendUtf8(static_cast<char32_t>(*cp), &out);
        decoded = true;
      }
    }
    if (!decoded) {  // not an entity we know: keep the '&' as is
      out.push_back('&');
      text.remove_prefix(1);
      continue;
    }
    text.remove_prefix(semi + 1);
  }
  return out;
}

Result<Endpoint> ParseEndpoint(std::string_view url) {
  if (url.rfind("https://", 0) == 0) return Status::NotSupported("https endpoints are not supported (plain http only)");
  if (url.rfind("http://", 0) == 0) url.remove_prefix(std::string_view("http://").size());
  const size_t slash = url.find('/');
  if (slash != std::string_view::npos) {
    if (url.substr(slash) != "/") return Status::InvalidArgument("the endpoint must not have a path");
    url = url.substr(0, slash);
  }
  Endpoint ep;
  std::string_view port_text;
  if (!url.empty() && url.front() == '[') {  // [v6 address]:port
    const size_t close = url.find(']');
    if (close == std::string_view::npos) return Status::InvalidArgument("unterminated [ in the endpoint");
    ep.host = std::string(url.substr(1, close - 1));
    const std::string_view rest = url.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return Status::InvalidArgument("junk after ] in the endpoint");
      port_text = rest.substr(1);
    }
  } else {
    const size_t colon = url.rfind(':');
    ep.host = std::string(url.substr(0, colon));
    if (colon != std::string_view::npos) port_text = url.substr(colon + 1);
  }
  if (ep.host.empty()) return Status::InvalidArgument("the endpoint has no host");
  ep.port = kDefaultHttpPort;
  if (!port_text.empty()) {
    const std::optional<uint64_t> port = ParseDecimal(port_text);
    if (!port || *port == 0 || *port > UINT16_MAX) return Status::InvalidArgument("bad port in the endpoint");
    ep.port = static_cast<uint16_t>(*port);
  }
  return ep;
}

std::string ObjectPath(std::string_view bucket, std::string_view key) {
  std::string path = "/";
  path.append(bucket);
  if (!key.empty()) {
    path.push_back('/');
    path.append(gateway::UriEncode(key, /*keep_slash=*/true));
  }
  return path;
}

S3Client::S3Client(ClientOptions options) : options_(std::move(options)) {}

S3Client::~S3Client() { Close(); }

S3Client::S3Client(S3Client&& other) noexcept { *this = std::move(other); }

S3Client& S3Client::operator=(S3Client&& other) noexcept {
  if (this == &other) return *this;
  Close();
  options_ = std::move(other.options_);
  host_ = std::move(other.host_);
  port_ = other.port_;
  host_header_ = std::move(other.host_header_);
  fd_ = std::exchange(other.fd_, -1);
  requests_on_connection_ = other.requests_on_connection_;
  reconnects_ = other.reconnects_;
  buf_ = std::move(other.buf_);
  begin_ = std::exchange(other.begin_, 0);
  end_ = std::exchange(other.end_, 0);
  body_buf_ = std::move(other.body_buf_);
  return *this;
}

Status S3Client::Connect(std::string_view host, uint16_t port) {
  Close();
  host_ = std::string(host);
  port_ = port;
  const bool v6_literal = host_.find(':') != std::string::npos;
  const std::string bracketed = v6_literal ? "[" + host_ + "]" : host_;
  host_header_ = port == kDefaultHttpPort ? bracketed : fmt::format("{}:{}", bracketed, port);
  return OpenSocket();
}

Status S3Client::OpenSocket() {
  Close();
  if (host_.empty()) return Status::InvalidArgument("S3Client: Connect was never called");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(port_);
  if (const int rc = getaddrinfo(host_.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return Status::IOError(fmt::format("resolve {}: {}", host_, gai_strerror(rc)));
  }
  Status last = Status::IOError("resolve " + host_ + ": no addresses");
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last = Status::FromErrno(errno, "socket");
      continue;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    Status s = SetTimeout(fd, SO_RCVTIMEO, options_.io_timeout);
    if (s.ok()) s = SetTimeout(fd, SO_SNDTIMEO, options_.io_timeout);
    if (s.ok() && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      s = errno == EINPROGRESS ? Status::Timeout("connect to " + host_header_)
                               : Status::FromErrno(errno, "connect to " + host_header_);
    }
    if (!s.ok()) {
      ::close(fd);
      last = s;
      continue;
    }
    fd_ = fd;
    break;
  }
  freeaddrinfo(found);
  if (fd_ < 0) return last;
  requests_on_connection_ = 0;
  begin_ = end_ = 0;
  if (buf_.size() < kReadBufferBytes) buf_.resize(kReadBufferBytes);
  return Status::OK();
}

void S3Client::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  begin_ = end_ = 0;
}

bool S3Client::PeerClosed() {
  if (fd_ < 0) return true;
  if (begin_ < end_) return true;  // bytes nobody asked for: the stream is out of step
  pollfd p{fd_, POLLIN, 0};
  const int rc = poll(&p, 1, 0);
  if (rc < 0) return true;
  if (rc == 0) return false;
  if ((p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) return true;
  char c;
  const ssize_t n = recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  return true;  // EOF, or an unsolicited response (e.g. a 408 before closing)
}

Result<std::string> S3Client::BuildHead(const Request& request) const {
  for (const auto& [name, value] : request.headers) {
    const std::string lower = ToLower(name);
    if (lower == "host" || lower == "content-length" || lower == "authorization" || lower == "user-agent") {
      return Status::InvalidArgument("S3Client adds the " + lower + " header itself");
    }
  }
  if (request.path.empty() || request.path.front() != '/') {
    return Status::InvalidArgument("the request path must start with '/'");
  }
  const uint64_t body_length = request.body_source ? request.body_length : request.body.size();
  std::string payload_hash = request.content_sha256;
  if (payload_hash.empty()) {
    if (body_length == 0) {
      payload_hash = kEmptySha256Hex;
    } else if (!options_.sign_payload) {
      payload_hash = gateway::kUnsignedPayload;
    } else if (request.body_source) {
      return Status::InvalidArgument("sign_payload with a body_source needs Request::content_sha256");
    } else {
      payload_hash = crypto::HexEncode(crypto::Sha256(request.body));
    }
  }

  HttpHeaders headers = request.headers;
  std::string authorization;
  const bool sign = !options_.credentials.access_key.empty() && !options_.credentials.secret_key.empty();
  if (sign) {
    gateway::SigningParams params;
    params.credentials = options_.credentials;
    params.region = options_.region;
    params.now_unix_seconds = static_cast<int64_t>(std::time(nullptr));
    CAIRN_ASSIGN_OR_RETURN(authorization, gateway::SignRequest(request.method, request.path, request.query,
                                                               host_header_, payload_hash, params, &headers));
  } else {
    headers.insert(headers.begin(), {"host", host_header_});
  }

  std::string head;
  head.reserve(512);
  head.append(request.method).push_back(' ');
  head.append(request.path);
  if (!request.query.empty()) head.append("?").append(request.query);
  head.append(" HTTP/1.1\r\n");
  for (const auto& [name, value] : headers) head.append(name).append(": ").append(value).append(kCrlf);
  if (body_length > 0 || request.method == "PUT" || request.method == "POST") {
    head.append(fmt::format("content-length: {}\r\n", body_length));
  }
  if (!options_.user_agent.empty()) head.append("user-agent: ").append(options_.user_agent).append(kCrlf);
  if (sign) head.append("authorization: ").append(authorization).append(kCrlf);
  head.append(kCrlf);
  return head;
}

Result<std::string> S3Client::Serialize(const Request& request) const {
  if (request.body_source) return Status::InvalidArgument("Serialize needs a string_view body");
  CAIRN_ASSIGN_OR_RETURN(std::string bytes, BuildHead(request));
  bytes.append(request.body);
  return bytes;
}

Status S3Client::WriteAll(const char* data, size_t size, bool more) {
  const int flags = MSG_NOSIGNAL | (more ? MSG_MORE : 0);
  while (size > 0) {
    const ssize_t n = send(fd_, data, size, flags);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::Timeout("send to " + host_header_);
      return Status::FromErrno(errno, "send to " + host_header_);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Status::OK();
}

Status S3Client::WriteBody(const Request& request) {
  if (!request.body_source) return WriteAll(request.body.data(), request.body.size(), /*more=*/false);
  const size_t piece = static_cast<size_t>(std::min<uint64_t>(request.body_length, kBodySourceChunk));
  if (body_buf_.size() < piece) body_buf_.resize(piece);
  for (uint64_t offset = 0; offset < request.body_length;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(piece, request.body_length - offset));
    request.body_source(offset, std::span<char>(body_buf_.data(), n));
    offset += n;
    CAIRN_RETURN_IF_ERROR(WriteAll(body_buf_.data(), n, /*more=*/offset < request.body_length));
  }
  return Status::OK();
}

Result<size_t> S3Client::Fill() {
  if (fd_ < 0) return Status::IOError("not connected");
  if (begin_ == end_) begin_ = end_ = 0;
  if (buf_.size() - end_ < kMinReadSpace) {
    if (begin_ > 0) {
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (buf_.size() - end_ < kMinReadSpace) buf_.resize(std::max(buf_.size() * 2, kReadBufferBytes));
  }
  while (true) {
    const ssize_t n = recv(fd_, buf_.data() + end_, buf_.size() - end_, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::Timeout("recv from " + host_header_);
      return Status::FromErrno(errno, "recv from " + host_header_);
    }
    end_ += static_cast<size_t>(n);
    return static_cast<size_t>(n);
  }
}

void S3Client::Deliver(std::string_view piece, Response* response, bool discard, const BodySink& sink) {
  response->body_bytes += piece.size();
  if (sink) {
    sink(piece);
  } else if (!discard) {
    if (response->status >= kFirstErrorStatus && response->body.size() + piece.size() > kMaxKeptErrorBody) {
      piece = piece.substr(0, kMaxKeptErrorBody - std::min(kMaxKeptErrorBody, response->body.size()));
    }
    response->body.append(piece);
  }
}

Result<Response> S3Client::ReadResponseInternal(bool head_request, bool discard, const BodySink& sink,
                                                uint64_t* bytes_seen) {
  while (true) {
    // Find the end of the head.
    size_t scanned = 0;
    size_t head_end = std::string_view::npos;
    while (true) {
      const std::string_view avail(buf_.data() + begin_, end_ - begin_);
      const size_t from = scanned >= 3 ? scanned - 3 : 0;
      head_end = avail.find("\r\n\r\n", from);
      if (head_end != std::string_view::npos) break;
      scanned = avail.size();
      if (avail.size() > options_.max_header_bytes) {
        return Status::InvalidArgument(fmt::format("response head exceeds {} bytes", options_.max_header_bytes));
      }
      CAIRN_ASSIGN_OR_RETURN(const size_t n, Fill());
      if (n == 0) {
        return Status::IOError(
            fmt::format("{} closed the connection after {} bytes of a response", host_header_, end_ - begin_));
      }
      *bytes_seen += n;
    }
    const std::string head(buf_.data() + begin_, head_end + 2);  // keep one CRLF: every line ends in one
    begin_ += head_end + 4;

    Response response;
    size_t line_end = head.find(kCrlf);
    const std::string_view status_line = std::string_view(head).substr(0, line_end);
    // "HTTP/1.1 200 OK": the version, a space, three digits, then an optional reason.
    if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ') {
      return Status::InvalidArgument("not an HTTP/1.x status line: " + std::string(status_line.substr(0, 80)));
    }
    const std::optional<uint64_t> code = ParseDecimal(status_line.substr(9, 3));
    if (!code || (status_line.size() > 12 && status_line[12] != ' ')) {
      return Status::InvalidArgument("bad status code: " + std::string(status_line.substr(0, 80)));
    }
    const bool http10 = status_line[7] == '0';
    response.status = static_cast<int>(*code);
    response.reason = status_line.size() > 13 ? std::string(status_line.substr(13)) : "";
    size_t pos = line_end + 2;
    while (pos < head.size()) {
      line_end = head.find(kCrlf, pos);
      const std::string_view line = std::string_view(head).substr(pos, line_end - pos);
      pos = line_end + 2;
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos || colon == 0) {
        return Status::InvalidArgument("bad response header line: " + std::string(line.substr(0, 80)));
      }
      response.headers.emplace_back(ToLower(line.substr(0, colon)), std::string(TrimView(line.substr(colon + 1))));
    }
    if (response.status >= 100 && response.status < 200 && response.status != 101) continue;  // interim

    bool close = http10;
    if (auto connection = response.Header("connection")) {
      if (HasToken(*connection, "close")) close = true;
      if (http10 && HasToken(*connection, "keep-alive")) close = false;
    }
    response.connection_closed = close;
    CAIRN_RETURN_IF_ERROR(ReadBody(&response, head_request, discard, sink));
    return response;
  }
}

Status S3Client::ReadBody(Response* response, bool head_request, bool discard, const BodySink& sink) {
  const int status = response->status;
  if (head_request || status == 204 || status == 304 || (status >= 100 && status < 200)) return Status::OK();
  // Error bodies are kept whatever the request asked (up to kMaxKeptErrorBody), so that
  // ErrorCode() works for benchmarks that discard or sink the bodies of successful responses.
  BodySink no_sink;
  const bool error_body = status >= kFirstErrorStatus;
  const BodySink& to = error_body ? no_sink : sink;
  if (error_body) discard = false;

  const auto take = [&](uint64_t want) -> Status {
    while (want > 0) {
      if (begin_ == end_) {
        CAIRN_ASSIGN_OR_RETURN(const size_t n, Fill());
        if (n == 0) {
          return Status::IOError(
              fmt::format("{} closed the connection {} bytes short of a response body", host_header_, want));
        }
      }
      const size_t n = static_cast<size_t>(std::min<uint64_t>(want, end_ - begin_));
      Deliver(std::string_view(buf_.data() + begin_, n), response, discard, to);
      begin_ += n;
      want -= n;
    }
    return Status::OK();
  };
  // Reads one CRLF-terminated line (without the CRLF).
  const auto line = [&](std::string* out) -> Status {
    while (true) {
      const std::string_view avail(buf_.data() + begin_, end_ - begin_);
      const size_t crlf = avail.find(kCrlf);
      if (crlf != std::string_view::npos) {
        out->assign(avail.substr(0, crlf));
        begin_ += crlf + 2;
        return Status::OK();
      }
      if (avail.size() > options_.max_header_bytes) return Status::InvalidArgument("chunk line too long");
      CAIRN_ASSIGN_OR_RETURN(const size_t n, Fill());
      if (n == 0) return Status::IOError(host_header_ + " closed the connection inside a chunked body");
    }
  };

  if (auto te = response->Header("transfer-encoding")) {
    if (!HasToken(*te, "chunked")) return Status::InvalidArgument("unsupported transfer-encoding " + std::string(*te));
    std::string text;
    while (true) {
      CAIRN_RETURN_IF_ERROR(line(&text));
      const std::string_view size_text = TrimView(std::string_view(text).substr(0, text.find(';')));
      const std::optional<uint64_t> size = ParseHex(size_text);
      if (!size) return Status::InvalidArgument("bad chunk size line: " + text.substr(0, 80));
      if (*size == 0) break;
      CAIRN_RETURN_IF_ERROR(take(*size));
      CAIRN_RETURN_IF_ERROR(line(&text));
      if (!text.empty()) return Status::InvalidArgument("chunk data not followed by CRLF");
    }
    do {  // trailers, up to the empty line
      CAIRN_RETURN_IF_ERROR(line(&text));
    } while (!text.empty());
    return Status::OK();
  }

  std::optional<uint64_t> length;
  for (const auto& [name, value] : response->headers) {
    if (name != "content-length") continue;
    const std::optional<uint64_t> v = ParseDecimal(value);
    if (!v || (length && *length != *v)) return Status::InvalidArgument("bad content-length " + value);
    length = v;
  }
  if (length) return take(*length);

  // Neither: the body runs until the server closes the connection.
  response->connection_closed = true;
  while (true) {
    if (begin_ < end_) {
      Deliver(std::string_view(buf_.data() + begin_, end_ - begin_), response, discard, to);
      begin_ = end_;
    }
    CAIRN_ASSIGN_OR_RETURN(const size_t n, Fill());
    if (n == 0) return Status::OK();
  }
}

Result<Response> S3Client::Send(const Request& request) {
  if (fd_ >= 0 && requests_on_connection_ > 0 && PeerClosed()) {
    Close();
    ++reconnects_;
  }
  if (fd_ < 0) CAIRN_RETURN_IF_ERROR(OpenSocket());
  const uint64_t body_length = request.body_source ? request.body_length : request.body.size();
  const bool head_request = IsHeadMethod(request.method);
  CAIRN_ASSIGN_OR_RETURN(const std::string head, BuildHead(request));

  for (int attempt = 0;; ++attempt) {
    const bool reused = requests_on_connection_ > 0;
    uint64_t bytes_seen = 0;
    Status s = WriteAll(head.data(), head.size(), /*more=*/body_length > 0);
    if (s.ok()) s = WriteBody(request);
    // Even when the write failed, the server may have answered before closing (an error for a
    // request it would not read to the end): read what it said.
    Result<Response> response = ReadResponseInternal(head_request, request.discard_body, request.on_body, &bytes_seen);
    if (response.ok()) {
      ++requests_on_connection_;
      if (!s.ok()) response->connection_closed = true;
      if (response->connection_closed) Close();
      return response;
    }
    Close();
    if (s.ok()) s = response.status();
    // A connection the server closed while idle fails before any byte of a response arrives;
    // the request then never reached it and is safe to send again, once, on a new connection.
    if (!reused || bytes_seen > 0 || attempt > 0 || s.IsTimeout()) return s;
    ++reconnects_;
    CAIRN_RETURN_IF_ERROR(OpenSocket());
  }
}

Status S3Client::WriteRaw(std::string_view bytes) {
  if (fd_ < 0) CAIRN_RETURN_IF_ERROR(OpenSocket());
  return WriteAll(bytes.data(), bytes.size(), /*more=*/false);
}

Result<Response> S3Client::ReadResponse(bool head_request) {
  if (fd_ < 0 && begin_ == end_) return Status::IOError("not connected");
  uint64_t seen = 0;
  Result<Response> response = ReadResponseInternal(head_request, /*discard=*/false, /*sink=*/{}, &seen);
  if (!response.ok() || response->connection_closed) {
    // Keep nothing of a stream that is over or out of step.
    Close();
  } else {
    ++requests_on_connection_;
  }
  return response;
}

Result<Response> S3Client::SendRaw(std::string_view bytes, bool head_request) {
  CAIRN_RETURN_IF_ERROR(WriteRaw(bytes));
  return ReadResponse(head_request);
}

Result<std::string> S3Client::ReadUntilClose(std::chrono::milliseconds timeout) {
  std::string out(buf_.data() + begin_, end_ - begin_);
  begin_ = end_ = 0;
  if (fd_ < 0) return out;
  CAIRN_RETURN_IF_ERROR(SetTimeout(fd_, SO_RCVTIMEO, timeout));
  while (true) {
    Result<size_t> n = Fill();
    if (!n.ok()) {
      if (!n.status().IsTimeout()) {
        Close();
        return n.status();
      }
      break;  // quiet for `timeout`: return what came
    }
    out.append(buf_.data() + begin_, end_ - begin_);
    begin_ = end_ = 0;
    if (*n == 0) {
      Close();
      return out;
    }
  }
  CAIRN_RETURN_IF_ERROR(SetTimeout(fd_, SO_RCVTIMEO, options_.io_timeout));
  return out;
}

}  // namespace cairn::bench
