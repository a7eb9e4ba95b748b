// One HTTP/1.1 request/response exchange on a connection, for the S3 handlers.
//
// The connection (server.cc) parses the request head with Boost.Beast and hands the handler an
// HttpExchange. The handler reads the body in pieces, as it needs it (so that a 5 GiB PUT is
// never in memory), and writes the response itself: the head, then a body from memory or
// straight from a file with sendfile(2), so stored bytes reach the socket without passing
// through user space.
//
// Blocking I/O: each connection has a thread of its own (see docs/design/server.md for why), and
// its socket has receive and send timeouts, so a silent peer costs a sleeping thread for at most
// the timeout.
//
// Thread-safety: an exchange belongs to its connection's thread.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/status.h"

namespace cairn::gateway::server {

namespace http = boost::beast::http;
using RequestParser = http::request_parser<http::buffer_body>;

// The status line and headers of a response. Content-Length, Date, Server and Connection are
// added by SendHead.
struct ResponseHead {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;

  void Add(std::string name, std::string value) { headers.emplace_back(std::move(name), std::move(value)); }
};

class HttpExchange {
 public:
  HttpExchange(boost::asio::ip::tcp::socket& socket, boost::beast::flat_buffer& buffer, RequestParser& parser);

  std::string_view method() const;
  std::string_view target() const;
  const http::fields& fields() const;
  // The value of a header (case-insensitive name); repeated headers are joined with ','.
  std::optional<std::string> Header(std::string_view name) const;
  // The Content-Length, or nullopt when the body is chunked or absent.
  std::optional<uint64_t> content_length() const;
  bool chunked() const;
  // The peer's IP address as text ("127.0.0.1", "::1"); IPv4-mapped IPv6 addresses in their IPv4
  // form. Empty when the socket has no peer any more.
  std::string peer_address() const;
  // The client asked to close after this request (Connection: close, or HTTP/1.0).
  bool client_wants_close() const;

  // Reads up to out.size() bytes of the body; 0 means the body is complete. Answers an
  // "Expect: 100-continue" before the first read. Errors: IncompleteBody when the peer closed or
  // timed out before the body was complete (the connection is then unusable), InvalidArgument
  // for malformed chunked framing.
  Result<size_t> ReadBody(std::span<std::byte> out);
  bool body_complete() const { return parser_.is_done(); }
  // Reads the whole body when it holds at most `max_bytes` (XML documents). Error:
  // InvalidArgument when it is larger, or what ReadBody reports.
  Result<std::string> ReadSmallBody(size_t max_bytes);
  // Reads and discards what is left of the body, up to `max_bytes`; true when the body is then
  // complete, so that the connection can carry another request.
  bool DrainBody(uint64_t max_bytes);
  // An unread body up to this size is drained after a response so the connection stays usable;
  // a larger one closes it.
  static constexpr uint64_t kMaxDrainBytes = 1 << 20;

  // Writes the status line and headers. `content_length` is the body that follows (for HEAD,
  // the length the GET would send; no body follows then).
  // `first`: the start of the body, sent in the same write (small objects: one send per GET).
  // `more`: more is coming at once (a sendfile); the kernel holds the head to fill a packet.
  Status SendHead(const ResponseHead& head, uint64_t content_length, std::span<const std::byte> first = {},
                  bool more = false);
  // `more` as for SendHead (MSG_MORE).
  Status SendBytes(std::span<const std::byte> data, bool more = false);
  Status SendBytes(std::string_view data) { return SendBytes(std::as_bytes(std::span(data.data(), data.size()))); }
  // Sends [offset, offset + length) of file `fd` with sendfile(2).
  Status SendFile(int fd, uint64_t offset, uint64_t length);
  // SendHead plus a body held in memory.
  Status SendResponse(const ResponseHead& head, std::string_view body);

  // After this exchange the connection is closed (set on errors that leave it unusable).
  void set_close() { close_ = true; }
  bool keep_alive() const { return !close_ && !client_wants_close(); }
  bool head_sent() const { return head_sent_; }

  uint64_t bytes_received() const { return bytes_in_; }
  uint64_t bytes_sent() const { return bytes_out_; }

 private:
  Status SendContinueIfExpected();
  std::string BuildHead(const ResponseHead& head, uint64_t content_length);

  boost::asio::ip::tcp::socket& socket_;
  boost::beast::flat_buffer& buffer_;
  RequestParser& parser_;
  bool continue_sent_ = false;
  bool head_sent_ = false;
  bool close_ = false;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
};

}  // namespace cairn::gateway::server
