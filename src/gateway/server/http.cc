#include "gateway/server/http.h"

#include <sys/sendfile.h>
#include <sys/socket.h>

#include <boost/beast/http/read.hpp>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "gateway/s3_request.h"

namespace cairn::gateway::server {

namespace beast = boost::beast;

HttpExchange::HttpExchange(boost::asio::ip::tcp::socket& socket, beast::flat_buffer& buffer, RequestParser& parser)
    : socket_(socket), buffer_(buffer), parser_(parser) {}

std::string_view HttpExchange::method() const {
  const auto m = parser_.get().method_string();
  return {m.data(), m.size()};
}

std::string_view HttpExchange::target() const {
  const auto t = parser_.get().target();
  return {t.data(), t.size()};
}

const http::fields& HttpExchange::fields() const { return parser_.get().base(); }

std::optional<std::string> HttpExchange::Header(std::string_view name) const {
  std::optional<std::string> out;
  for (const auto& f : parser_.get().base()) {
    const auto n = f.name_string();
    if (!beast::iequals(n, beast::string_view(name.data(), name.size()))) continue;
    const auto v = f.value();
    if (!out) {
      out.emplace(v.data(), v.size());
    } else {
      out->push_back(',');
      out->append(v.data(), v.size());
    }
  }
  return out;
}

std::string HttpExchange::peer_address() const {
  boost::system::error_code ec;
  const auto endpoint = socket_.remote_endpoint(ec);
  if (ec) return {};
  auto address = endpoint.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6()).to_string();
  }
  return address.to_string();
}

std::optional<uint64_t> HttpExchange::content_length() const {
  const auto len = parser_.content_length();
  if (!len) return std::nullopt;
  return static_cast<uint64_t>(*len);
}

bool HttpExchange::chunked() const { return parser_.chunked(); }

bool HttpExchange::client_wants_close() const { return !parser_.get().keep_alive(); }

Status HttpExchange::SendContinueIfExpected() {
  if (continue_sent_) return Status::OK();
  continue_sent_ = true;
  const auto expect = parser_.get()[http::field::expect];
  if (beast::iequals(expect, "100-continue")) {
    return SendBytes(std::string_view("HTTP/1.1 100 Continue\r\n\r\n"));
  }
  return Status::OK();
}

Result<size_t> HttpExchange::ReadBody(std::span<std::byte> out) {
  // Even an empty body gets its 100 Continue when one was asked for: botocore 1.29 misreads the
  // next exchange on the connection when a 100-continue request is answered without it.
  CAIRN_RETURN_IF_ERROR(SendContinueIfExpected());
  if (parser_.is_done() || out.empty()) return size_t{0};
  while (true) {
    auto& body = parser_.get().body();
    body.data = out.data();
    body.size = out.size();
    beast::error_code ec;
    http::read_some(socket_, buffer_, parser_, ec);
    const size_t n = out.size() - body.size;
    body.data = nullptr;
    body.size = 0;
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      close_ = true;
      if (ec == http::error::partial_message || ec == http::error::end_of_stream ||
          ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset ||
          ec == boost::asio::error::would_block || ec == boost::asio::error::try_again ||
          ec == boost::asio::error::timed_out) {
        return Status::IncompleteBody("the body ended before its announced length: " + ec.message());
      }
      return Status::InvalidArgument("malformed request body: " + ec.message());
    }
    bytes_in_ += n;
    if (n > 0 || parser_.is_done()) return n;
  }
}

Result<std::string> HttpExchange::ReadSmallBody(size_t max_bytes) {
  std::string out;
  if (auto len = content_length(); len && *len > max_bytes) {
    return Status::InvalidArgument("the request body is larger than " + std::to_string(max_bytes) + " bytes");
  }
  char buf[16384];
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(size_t n, ReadBody(std::as_writable_bytes(std::span(buf))));
    if (n == 0) break;
    if (out.size() + n > max_bytes) {
      return Status::InvalidArgument("the request body is larger than " + std::to_string(max_bytes) + " bytes");
    }
    out.append(buf, n);
  }
  return out;
}

bool HttpExchange::DrainBody(uint64_t max_bytes) {
  if (parser_.is_done()) return true;
  // A client that sent "Expect: 100-continue" and got a final status sends no body at all, so
  // the connection cannot be reused: it does not know where the next request starts.
  const auto expect = parser_.get()[http::field::expect];
  if (!continue_sent_ && beast::iequals(expect, "100-continue")) return false;
  // A body longer than what may be drained is not waited for: the connection closes instead (a
  // client that sent only the head of a 5 GiB PUT and waits for the answer gets it at once).
  if (const auto left = parser_.content_length_remaining(); left && *left > max_bytes) return false;
  continue_sent_ = true;  // draining must not send 100 Continue after a final response
  uint64_t drained = 0;
  char buf[65536];
  while (drained <= max_bytes) {
    auto n = ReadBody(std::as_writable_bytes(std::span(buf)));
    if (!n.ok()) return false;
    if (*n == 0) return parser_.is_done();
    drained += *n;
  }
  return false;
}

Status HttpExchange::SendBytes(std::span<const std::byte> data, bool more) {
  const int fd = socket_.native_handle();
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
    if (n < 0) {
      if (errno == EINTR) continue;
      close_ = true;
      return Status::IOError(std::string("send: ") + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  bytes_out_ += data.size();
  return Status::OK();
}

Status HttpExchange::SendFile(int fd, uint64_t offset, uint64_t length) {
  const int out = socket_.native_handle();
  off_t off = static_cast<off_t>(offset);
  uint64_t left = length;
  while (left > 0) {
    const ssize_t n = ::sendfile(out, fd, &off, std::min<uint64_t>(left, 1u << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      close_ = true;
      return Status::IOError(std::string("sendfile: ") + std::strerror(errno));
    }
    if (n == 0) {
      close_ = true;
      return Status::IOError("sendfile: the file ended before the range did");
    }
    left -= static_cast<uint64_t>(n);
  }
  bytes_out_ += length;
  return Status::OK();
}

std::string HttpExchange::BuildHead(const ResponseHead& head, uint64_t content_length) {
  std::string out;
  out.reserve(512);
  out += "HTTP/1.1 ";
  out += std::to_string(head.status);
  out += ' ';
  const auto reason = http::obsolete_reason(http::int_to_status(static_cast<unsigned>(head.status)));
  out.append(reason.data(), reason.size());
  out += "\r\n";
  for (const auto& [name, value] : head.headers) {
    out += name;
    out += ": ";
    // A header value must not break the framing: control characters other than tab are
    // replaced (S3 metadata values are ASCII; a stored value cannot hold CR or LF, but be safe).
    for (char c : value) out += (static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f ? ' ' : c;
    out += "\r\n";
  }
  out += "Date: " + FormatHttpDate(static_cast<int64_t>(::time(nullptr))) + "\r\n";
  out += "Server: Cairn\r\n";
  if (head.status != 204 && head.status != 304 && head.status >= 200) {
    out += "Content-Length: " + std::to_string(content_length) + "\r\n";
  }
  out += keep_alive() ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  out += "\r\n";
  return out;
}

Status HttpExchange::SendHead(const ResponseHead& head, uint64_t content_length, std::span<const std::byte> first,
                              bool more) {
  head_sent_ = true;
  std::string out = BuildHead(head, content_length);
  if (!first.empty()) out.append(reinterpret_cast<const char*>(first.data()), first.size());
  return SendBytes(std::as_bytes(std::span(out.data(), out.size())), more);
}

Status HttpExchange::SendResponse(const ResponseHead& head, std::string_view body) {
  // One send for head and body: small responses are the common case.
  std::string out = BuildHead(head, body.size());
  if (method() != "HEAD") out.append(body);
  head_sent_ = true;
  return SendBytes(std::as_bytes(std::span(out.data(), out.size())));
}

}  // namespace cairn::gateway::server
