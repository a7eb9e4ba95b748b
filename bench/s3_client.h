// A small blocking S3 client over one keep-alive HTTP/1.1 connection, for `cairn bench s3` and for
// tests that drive a running server (including with deliberately broken requests).
//
// S3Client holds one TCP connection (plain POSIX sockets, no TLS). Send writes a request and
// reads its response: it adds Host and Content-Length, signs with SigV4 (gateway/sigv4_sign.h)
// when credentials are set, and streams the body from a string_view or from a BodySource, so a
// 64 MiB PUT is never copied. The response body is kept, handed to a sink piece by piece, or
// only counted (GET benchmarks). When the server has closed an idle connection, Send reconnects
// and, if nothing of the response had arrived, sends the request again once.
//
// Raw mode (WriteRaw, ReadResponse, ReadUntilClose) writes arbitrary bytes and reads whatever
// comes back, for tests of malformed or mangled requests; Serialize gives the exact bytes Send
// would write, as a starting point for mangling.
//
// Responses are parsed strictly enough to frame them (status line, headers, Content-Length or
// chunked or read-until-close): the client does not interpret S3 semantics beyond ErrorCode().
//
// Thread-safety: an S3Client is used by one thread at a time; use one per worker thread. The free
// functions are safe to call concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/status.h"
#include "gateway/sigv4.h"

namespace cairn::bench {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// Writes the `out.size()` body bytes that start at `offset` into `out`. Called in order, with
// offsets increasing from 0, possibly more than once per body when a request is retried.
using BodySource = std::function<void(uint64_t offset, std::span<char> out)>;
// Receives response body bytes in order, as they arrive.
using BodySink = std::function<void(std::string_view piece)>;

struct Request {
  std::string method = "GET";
  // Raw request path, already percent-encoded, starting with '/' (see ObjectPath).
  std::string path = "/";
  // Raw query string without '?', already percent-encoded; may be empty.
  std::string query;
  // Extra headers, any case. Host, Content-Length, User-Agent and the SigV4 headers are added by
  // Send and must not be given here.
  HttpHeaders headers;
  // The body, used when body_source is empty. Must stay valid until Send returns.
  std::string_view body;
  // When set, the body is body_length bytes produced by this callback instead of `body`.
  BodySource body_source;
  uint64_t body_length = 0;
  // x-amz-content-sha256 to sign: a lowercase hex SHA-256 of the body, or UNSIGNED-PAYLOAD. When
  // empty, Send uses the SHA-256 of an empty body, else UNSIGNED-PAYLOAD, or with
  // ClientOptions::sign_payload the SHA-256 of `body` (a body_source then needs this set).
  std::string content_sha256;
  // Response body handling: by default it is kept in Response::body; with discard_body only
  // counted; with on_body handed to the sink (and not kept). Error responses (status >= 400)
  // always keep their body, its first MiB, so that ErrorCode() works.
  bool discard_body = false;
  BodySink on_body;
  // The response to a HEAD request carries no body whatever its headers say; Send knows this
  // from `method`.
};

struct Response {
  int status = 0;  // e.g. 200
  std::string reason;
  HttpHeaders headers;             // names lowercased, values trimmed, in order
  std::string body;                // empty when discarded or sunk (error responses excepted)
  uint64_t body_bytes = 0;         // body bytes received, whatever was done with them
  bool connection_closed = false;  // the connection was closed after this response

  // The first value of header `name` (lowercase), or nullopt.
  std::optional<std::string_view> Header(std::string_view name) const;
  // The <Code> of an S3 XML error body, or "" when there is none (or the body was not kept).
  std::string ErrorCode() const;
  // The <Message> of an S3 XML error body, or "".
  std::string ErrorMessage() const;
};

struct ClientOptions {
  // When both are set, requests are signed (SigV4, Authorization header); otherwise anonymous.
  gateway::Credentials credentials;
  std::string region = "us-east-1";
  // Sign bodies given as a string_view with their real SHA-256 instead of UNSIGNED-PAYLOAD.
  bool sign_payload = false;
  // A read or write that makes no progress for this long fails with Timeout.
  std::chrono::milliseconds io_timeout{60'000};
  // Response headers larger than this fail the request (InvalidArgument).
  size_t max_header_bytes = 64 * 1024;
  std::string user_agent = "cairn-bench";
};

// "http://host:port" (or "host:port"; port defaults to 80) split into host and port. https is
// refused (NotSupported), as is anything after the authority other than "/".
struct Endpoint {
  std::string host;
  uint16_t port = 80;
};
Result<Endpoint> ParseEndpoint(std::string_view url);

// The text of the first <name> element in an XML document, with the five predefined entities and
// character references decoded; "" when there is no such element. A scan, not a parser: enough
// for S3 response fields (Code, Message, IsTruncated, NextContinuationToken).
std::string XmlText(std::string_view xml, std::string_view name);

// The raw path of an object in path-style addressing: "/bucket/" + key percent-encoded with the
// unreserved set, '/' kept. With an empty key, the bucket's path "/bucket".
std::string ObjectPath(std::string_view bucket, std::string_view key);

class S3Client {
 public:
  explicit S3Client(ClientOptions options = {});
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;
  S3Client(S3Client&& other) noexcept;
  S3Client& operator=(S3Client&& other) noexcept;

  // Opens a connection to host:port (closing any open one) and remembers the address for
  // reconnects. Errors: IOError (resolve or connect failed), Timeout.
  Status Connect(std::string_view host, uint16_t port);
  void Close();
  bool connected() const { return fd_ >= 0; }

  // Sends one request and reads its response; any HTTP status is a successful Send. Connects
  // first when not connected (REQUIRES: Connect was called once). Errors: IOError (connection
  // lost mid-request, after one retry when the request never reached the server), Timeout,
  // InvalidArgument (bad request fields, or an unparseable response; the connection is closed).
  Result<Response> Send(const Request& request);

  // The exact bytes Send would write for `request` (head and body), signed as of now.
  // REQUIRES: the body is a string_view (no body_source).
  Result<std::string> Serialize(const Request& request) const;

  // ---- Raw mode ----
  // Writes `bytes` as they are, connecting first when needed. Error: IOError, Timeout.
  Status WriteRaw(std::string_view bytes);
  // Reads one response; `head_request` says it answers a HEAD (no body). Bytes after it stay
  // buffered for the next read. Errors: IOError (closed before a whole response: the message
  // says how many bytes had arrived), Timeout, InvalidArgument (not HTTP).
  Result<Response> ReadResponse(bool head_request = false);
  // Reads until the server closes the connection or `timeout` passes with nothing to read, and
  // returns everything read (bytes already buffered included). Closes the connection after EOF.
  Result<std::string> ReadUntilClose(std::chrono::milliseconds timeout);
  // WriteRaw then ReadResponse.
  Result<Response> SendRaw(std::string_view bytes, bool head_request = false);
  // True when the server has closed the connection (or reset it, or sent bytes nobody asked
  // for); never blocks.
  bool PeerClosed();

  // Connections opened because the server had closed the previous one, since construction.
  uint64_t reconnects() const { return reconnects_; }
  // The Host header value requests carry ("127.0.0.1:9000").
  const std::string& host_header() const { return host_header_; }
  const ClientOptions& options() const { return options_; }

 private:
  Status OpenSocket();
  // Signs and renders the request head (request line and headers, ending in a blank line).
  Result<std::string> BuildHead(const Request& request) const;
  Status WriteBody(const Request& request);
  Status WriteAll(const char* data, size_t size, bool more);
  // Reads more bytes into the buffer; returns the count, 0 at EOF.
  Result<size_t> Fill();
  Result<Response> ReadResponseInternal(bool head_request, bool discard, const BodySink& sink, uint64_t* bytes_seen);
  Status ReadBody(Response* response, bool head_request, bool discard, const BodySink& sink);
  void Deliver(std::string_view piece, Response* response, bool discard, const BodySink& sink);

  ClientOptions options_;
  std::string host_;
  uint16_t port_ = 0;
  std::string host_header_;
  int fd_ = -1;
  uint64_t requests_on_connection_ = 0;
  uint64_t reconnects_ = 0;
  // Received bytes not yet consumed are buf_[begin_, end_).
  std::vector<char> buf_;
  size_t begin_ = 0;
  size_t end_ = 0;
  std::vector<char> body_buf_;  // scratch for BodySource output
};

}  // namespace cairn::bench
