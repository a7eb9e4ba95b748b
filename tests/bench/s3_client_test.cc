// Tests for the blocking S3 client against a scripted fake HTTP server in the same process:
// response framing (Content-Length, chunked, until-close, HEAD), keep-alive reuse, reconnecting
// after the server closed an idle connection, signing that VerifyRequest accepts, streamed
// bodies, timeouts and raw mode.
#include "bench/s3_client.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstring>
#include <ctime>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "common/crypto.h"
#include "gateway/sigv4.h"
#include "test_util.h"

namespace cairn::bench {
namespace {

constexpr std::string_view kAccessKey = "benchkey";
constexpr std::string_view kSecret = "bench-secret";

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void WriteAll(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    s.remove_prefix(static_cast<size_t>(n));
  }
}

// A request as the fake server received it.
struct Received {
  std::string method;
  std::string target;                                        // path?query
  std::vector<std::pair<std::string, std::string>> headers;  // lowercase names
  std::string body;

  std::string Header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (n == name) return v;
    }
    return {};
  }
};

// Reads one request (Content-Length framing only); nullopt at EOF before a whole request.
std::optional<Received> ReadRequest(int fd, std::string* buffer) {
  size_t head_end;
  while ((head_end = buffer->find("\r\n\r\n")) == std::string::npos) {
    char chunk[65536];
    const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) return std::nullopt;
    buffer->append(chunk, static_cast<size_t>(n));
  }
  Received r;
  const std::string head = buffer->substr(0, head_end + 2);
  buffer->erase(0, head_end + 4);
  size_t pos = head.find("\r\n");
  const std::string request_line = head.substr(0, pos);
  const size_t sp1 = request_line.find(' ');
  const size_t sp2 = request_line.rfind(' ');
  r.method = request_line.substr(0, sp1);
  r.target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  pos += 2;
  while (pos < head.size()) {
    const size_t end = head.find("\r\n", pos);
    const std::string line = head.substr(pos, end - pos);
    pos = end + 2;
    const size_t colon = line.find(':');
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    r.headers.emplace_back(Lower(line.substr(0, colon)), value);
  }
  const std::string length = r.Header("content-length");
  const size_t want = length.empty() ? 0 : std::stoull(length);
  while (buffer->size() < want) {
    char chunk[65536];
    const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) return std::nullopt;
    buffer->append(chunk, static_cast<size_t>(n));
  }
  r.body = buffer->substr(0, want);
  buffer->erase(0, want);
  return r;
}

std::string Ok(std::string_view body, std::string_view extra_headers = "") {
  return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + std::string(extra_headers) +
         "\r\n" + std::string(body);
}

// A one-thread HTTP server on an ephemeral port: each accepted connection is given to the
// handler (with its index), then closed.
class FakeServer {
 public:
  using Handler = std::function<void(int fd, int connection)>;

  explicit FakeServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(listen_fd_, 16), 0);
    socklen_t len = sizeof(addr);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeServer() {
    stop_ = true;
    thread_.join();
    close(listen_fd_);
  }

  uint16_t port() const { return port_; }
  int connections() const { return connections_; }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      const int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      handler_(fd, connections_++);
      close(fd);
    }
  }

  Handler handler_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

// Answers every request on a connection with `respond(request)` until the client closes.
FakeServer::Handler Serve(std::function<std::string(const Received&)> respond, std::vector<Received>* log = nullptr,
                          std::mutex* mu = nullptr) {
  return [respond = std::move(respond), log, mu](int fd, int) {
    std::string buffer;
    while (auto r = ReadRequest(fd, &buffer)) {
      if (log != nullptr) {
        std::lock_guard<std::mutex> l(*mu);
        log->push_back(*r);
      }
      WriteAll(fd, respond(*r));
    }
  };
}

S3Client Connected(const FakeServer& server, ClientOptions options = {}) {
  S3Client client(std::move(options));
  EXPECT_OK(client.Connect("127.0.0.1", server.port()));
  return client;
}

Request Get(std::string path) {
  Request r;
  r.path = std::move(path);
  return r;
}

// ---- Framing and connection reuse ----

TEST(S3ClientTest, KeepAliveReusesOneConnection) {
  FakeServer server(Serve([](const Received& r) { return Ok("you asked for " + r.target); }));
  S3Client client = Connected(server);
  for (int i = 0; i < 3; ++i) {
    auto response = client.Send(Get("/b/k" + std::to_string(i)));
    ASSERT_OK(response);
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->reason, "OK");
    EXPECT_EQ(response->body, "you asked for /b/k" + std::to_string(i));
    EXPECT_FALSE(response->connection_closed);
  }
  EXPECT_EQ(server.connections(), 1);
  EXPECT_EQ(client.reconnects(), 0u);
}

TEST(S3ClientTest, ChunkedBodyIsReassembled) {
  FakeServer server(Serve([](const Received&) {
    return std::string(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5;ext=1\r\nhello\r\n1\r\n,\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
  }));
  S3Client client = Connected(server);
  for (int i = 0; i < 2; ++i) {  // the framing leaves the stream in step for the next response
    auto response = client.Send(Get("/"));
    ASSERT_OK(response);
    EXPECT_EQ(response->body, "hello, world");
  }
}

TEST(S3ClientTest, BodyUntilCloseEndsTheConnection) {
  FakeServer server([](int fd, int) {
    std::string buffer;
    if (ReadRequest(fd, &buffer)) WriteAll(fd, "HTTP/1.0 200 OK\r\n\r\nall of it");
  });
  S3Client client = Connected(server);
  auto response = client.Send(Get("/"));
  ASSERT_OK(response);
  EXPECT_EQ(response->body, "all of it");
  EXPECT_TRUE(response->connection_closed);
  EXPECT_FALSE(client.connected());
}

TEST(S3ClientTest, HeadResponseHasNoBody) {
  FakeServer server(Serve([](const Received& r) {
    if (r.method == "HEAD") return std::string("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nETag: \"x\"\r\n\r\n");
    return Ok("after");
  }));
  S3Client client = Connected(server);
  Request head = Get("/b/k");
  head.method = "HEAD";
  auto h = client.Send(head);
  ASSERT_OK(h);
  EXPECT_EQ(h->body_bytes, 0u);
  EXPECT_EQ(h->Header("etag").value_or(""), "\"x\"");
  auto g = client.Send(Get("/b/k"));
  ASSERT_OK(g);
  EXPECT_EQ(g->body, "after");
}

TEST(S3ClientTest, InterimResponsesAreSkipped) {
  FakeServer server(Serve([](const Received&) { return "HTTP/1.1 100 Continue\r\n\r\n" + Ok("final"); }));
  S3Client client = Connected(server);
  auto response = client.Send(Get("/"));
  ASSERT_OK(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "final");
}

TEST(S3ClientTest, DiscardCountsAndSinkReceivesTheBody) {
  const std::string big(3 * 1024 * 1024 + 17, 'z');
  FakeServer server(Serve([&](const Received&) { return Ok(big); }));
  S3Client client = Connected(server);
  Request discard = Get("/");
  discard.discard_body = true;
  auto d = client.Send(discard);
  ASSERT_OK(d);
  EXPECT_TRUE(d->body.empty());
  EXPECT_EQ(d->body_bytes, big.size());

  std::string sunk;
  Request sink = Get("/");
  sink.on_body = [&](std::string_view piece) { sunk.append(piece); };
  auto s = client.Send(sink);
  ASSERT_OK(s);
  EXPECT_TRUE(s->body.empty());
  EXPECT_EQ(sunk, big);
}

TEST(S3ClientTest, ErrorBodiesAreKeptEvenWhenDiscarding) {
  FakeServer server(Serve([](const Received&) {
    const std::string xml = "<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>";
    return "HTTP/1.1 404 Not Found\r\nContent-Length: " + std::to_string(xml.size()) + "\r\n\r\n" + xml;
  }));
  S3Client client = Connected(server);
  Request discard = Get("/b/k");
  discard.discard_body = true;
  bool sunk = false;
  Request sink = Get("/b/k");
  sink.on_body = [&](std::string_view) { sunk = true; };
  for (const Request* r : {&discard, &sink}) {
    auto response = client.Send(*r);
    ASSERT_OK(response);
    EXPECT_EQ(response->status, 404);
    EXPECT_EQ(response->ErrorCode(), "NoSuchKey");
    EXPECT_EQ(response->ErrorMessage(), "gone");
  }
  EXPECT_FALSE(sunk);
}

TEST(S3ClientTest, ReconnectsWhenTheServerClosedAnIdleConnection) {
  // The server answers one request per connection and then closes without saying so.
  FakeServer server([](int fd, int) {
    std::string buffer;
    if (ReadRequest(fd, &buffer)) WriteAll(fd, Ok("one"));
  });
  S3Client client = Connected(server);
  for (int i = 0; i < 3; ++i) {
    auto response = client.Send(Get("/"));
    ASSERT_OK(response);
    EXPECT_EQ(response->body, "one");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let the FIN arrive
  }
  EXPECT_EQ(server.connections(), 3);
  EXPECT_EQ(client.reconnects(), 2u);
}

TEST(S3ClientTest, ReplaysOnceWhenTheCloseRacesTheRequest) {
  // The server takes the request, then closes without answering: the client cannot tell this
  // from an idle close, so it sends again once on a new connection.
  FakeServer server([](int fd, int connection) {
    std::string buffer;
    auto r = ReadRequest(fd, &buffer);
    if (!r) return;
    if (connection == 0) {
      WriteAll(fd, Ok("first"));
      ReadRequest(fd, &buffer);  // swallow the second request, answer nothing
      return;
    }
    WriteAll(fd, Ok("replayed"));
  });
  S3Client client = Connected(server);
  ASSERT_OK(client.Send(Get("/")));
  auto second = client.Send(Get("/"));
  ASSERT_OK(second);
  EXPECT_EQ(second->body, "replayed");
  EXPECT_EQ(client.reconnects(), 1u);
}

TEST(S3ClientTest, SilentServerTimesOut) {
  FakeServer server([](int fd, int) {
    std::string buffer;
    ReadRequest(fd, &buffer);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  });
  ClientOptions options;
  options.io_timeout = std::chrono::milliseconds(100);
  S3Client client = Connected(server, options);
  auto response = client.Send(Get("/"));
  EXPECT_TRUE(response.status().IsTimeout()) << response.status();
}

TEST(S3ClientTest, ConnectToAClosedPortFails) {
  uint16_t port;
  {
    port = FakeServer([](int, int) {}).port();
  }
  S3Client client;
  EXPECT_FALSE(client.Connect("127.0.0.1", port).ok());
}

// ---- Requests ----

ClientOptions Signing(bool sign_payload = false) {
  ClientOptions o;
  o.credentials = {std::string(kAccessKey), std::string(kSecret)};
  o.sign_payload = sign_payload;
  return o;
}

Result<gateway::AuthResult> VerifyReceived(const Received& r) {
  const size_t q = r.target.find('?');
  gateway::SigV4Request request{r.method, std::string_view(r.target).substr(0, q),
                                q == std::string::npos ? std::string_view() : std::string_view(r.target).substr(q + 1),
                                r.headers};
  return gateway::VerifyRequest(
      request,
      [](std::string_view key) -> std::optional<std::string> {
        if (key == kAccessKey) return std::string(kSecret);
        return std::nullopt;
      },
      static_cast<int64_t>(std::time(nullptr)), "us-east-1");
}

TEST(S3ClientTest, SignedRequestsVerify) {
  std::vector<Received> log;
  std::mutex mu;
  FakeServer server(Serve([](const Received&) { return Ok(""); }, &log, &mu));
  S3Client client = Connected(server, Signing());
  Request put;
  put.method = "PUT";
  put.path = ObjectPath("bucket", "dir/a key+é");
  put.body = "payload";
  put.headers = {{"Content-Type", "application/octet-stream"}};
  ASSERT_OK(client.Send(put));
  Request list = Get("/bucket");
  list.query = "list-type=2&max-keys=1000&continuation-token=a%2Fb%3D";
  ASSERT_OK(client.Send(list));

  std::lock_guard<std::mutex> l(mu);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].target, "/bucket/dir/a%20key%2B%C3%A9");
  EXPECT_EQ(log[0].body, "payload");
  EXPECT_EQ(log[0].Header("x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
  EXPECT_EQ(log[0].Header("host"), "127.0.0.1:" + std::to_string(server.port()));
  for (const Received& r : log) {
    auto auth = VerifyReceived(r);
    EXPECT_OK(auth);
  }
}

TEST(S3ClientTest, SignedPayloadCarriesItsSha256) {
  std::vector<Received> log;
  std::mutex mu;
  FakeServer server(Serve([](const Received&) { return Ok(""); }, &log, &mu));
  S3Client client = Connected(server, Signing(/*sign_payload=*/true));
  Request put;
  put.method = "PUT";
  put.path = "/bucket/k";
  put.body = "signed body";
  ASSERT_OK(client.Send(put));
  std::lock_guard<std::mutex> l(mu);
  auto auth = VerifyReceived(log.at(0));
  ASSERT_OK(auth);
  EXPECT_EQ(auth->payload_mode, gateway::PayloadMode::kSignedSha256);
  EXPECT_OK(gateway::CheckPayloadSha256(*auth, crypto::Sha256(log[0].body)));
}

TEST(S3ClientTest, BodySourceStreamsWithoutACopy) {
  std::vector<Received> log;
  std::mutex mu;
  FakeServer server(Serve([](const Received&) { return Ok(""); }, &log, &mu));
  S3Client client = Connected(server, Signing());
  constexpr uint64_t kLength = 2 * 1024 * 1024 + 3;
  Request put;
  put.method = "PUT";
  put.path = "/bucket/big";
  put.body_length = kLength;
  put.body_source = [](uint64_t offset, std::span<char> out) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<char>('a' + (offset + i) % 26);
  };
  ASSERT_OK(client.Send(put));
  std::lock_guard<std::mutex> l(mu);
  ASSERT_EQ(log.at(0).body.size(), kLength);
  for (uint64_t i = 0; i < kLength; i += 4099) ASSERT_EQ(log[0].body[i], static_cast<char>('a' + i % 26)) << i;
  EXPECT_OK(VerifyReceived(log[0]));
}

TEST(S3ClientTest, BadRequestFieldsAreRefused) {
  FakeServer server(Serve([](const Received&) { return Ok(""); }));
  S3Client client = Connected(server, Signing(/*sign_payload=*/true));
  Request own_host = Get("/");
  own_host.headers = {{"Host", "x"}};
  EXPECT_TRUE(client.Send(own_host).status().IsInvalidArgument());
  Request relative = Get("relative");
  EXPECT_TRUE(client.Send(relative).status().IsInvalidArgument());
  Request unsigned_source;
  unsigned_source.method = "PUT";
  unsigned_source.body_length = 1;
  unsigned_source.body_source = [](uint64_t, std::span<char> out) { out[0] = 'x'; };
  EXPECT_TRUE(client.Send(unsigned_source).status().IsInvalidArgument());
}

// ---- Raw mode ----

TEST(S3ClientTest, RawBytesAndWhateverComesBack) {
  FakeServer server([](int fd, int) {
    char buf[256];
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return;
    WriteAll(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\nConnection: close\r\n\r\nnope!");
  });
  S3Client client = Connected(server);
  auto response = client.SendRaw("GARBAGE / HTTP/9.9\r\n\x01\x02\r\n\r\n");
  ASSERT_OK(response);
  EXPECT_EQ(response->status, 400);
  EXPECT_EQ(response->body, "nope!");
  EXPECT_TRUE(response->connection_closed);
  EXPECT_FALSE(client.connected());
}

TEST(S3ClientTest, SerializeThenMangle) {
  std::vector<Received> log;
  std::mutex mu;
  FakeServer server([&](int fd, int) {
    std::string buffer;
    if (auto r = ReadRequest(fd, &buffer)) {
      {
        std::lock_guard<std::mutex> l(mu);
        log.push_back(*r);
      }
      WriteAll(fd, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    }
  });
  S3Client client = Connected(server, Signing());
  Request put;
  put.method = "PUT";
  put.path = "/bucket/k";
  put.body = "abc";
  auto bytes = client.Serialize(put);
  ASSERT_OK(bytes);
  std::string mangled = *bytes;
  mangled.replace(mangled.find("/bucket/k"), 9, "/bucket/K");
  ASSERT_OK(client.WriteRaw(mangled));
  auto response = client.ReadResponse();
  ASSERT_OK(response);
  EXPECT_EQ(response->status, 403);
  auto rest = client.ReadUntilClose(std::chrono::milliseconds(500));
  ASSERT_OK(rest);
  EXPECT_EQ(*rest, "");
  std::lock_guard<std::mutex> l(mu);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_TRUE(VerifyReceived(log[0]).status().IsSignatureDoesNotMatch());
}

// ---- Helpers ----

TEST(S3ClientHelpersTest, ParseEndpoint) {
  auto e = ParseEndpoint("http://127.0.0.1:9000");
  ASSERT_OK(e);
  EXPECT_EQ(e->host, "127.0.0.1");
  EXPECT_EQ(e->port, 9000);
  e = ParseEndpoint("localhost/");
  ASSERT_OK(e);
  EXPECT_EQ(e->host, "localhost");
  EXPECT_EQ(e->port, 80);
  e = ParseEndpoint("http://[::1]:9001");
  ASSERT_OK(e);
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->port, 9001);
  EXPECT_TRUE(ParseEndpoint("https://s3.example.com").status().IsNotSupported());
  EXPECT_FALSE(ParseEndpoint("http://host:99999").ok());
  EXPECT_FALSE(ParseEndpoint("http://host:9000/path").ok());
  EXPECT_FALSE(ParseEndpoint("http://:9000").ok());
}

TEST(S3ClientHelpersTest, ObjectPathEncodesTheKey) {
  EXPECT_EQ(ObjectPath("b", ""), "/b");
  EXPECT_EQ(ObjectPath("b", "bench/0/17"), "/b/bench/0/17");
  EXPECT_EQ(ObjectPath("b", "a b&c=d"), "/b/a%20b%26c%3Dd");
}

TEST(S3ClientHelpersTest, XmlText) {
  const std::string xml =
      "<Error><Code>NoSuchKey</Code><Message>a &amp; b &lt;c&gt; &#233;&#x41;&bogus;</Message></Error>";
  EXPECT_EQ(XmlText(xml, "Code"), "NoSuchKey");
  EXPECT_EQ(XmlText(xml, "Message"),
            "a & b <c> \xC3\xA9"
            "A&bogus;");
  EXPECT_EQ(XmlText(xml, "Missing"), "");
}

}  // namespace
}  // namespace cairn::bench
