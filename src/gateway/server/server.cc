#include "gateway/server/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "common/crypto.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "engine/engine.h"
#include "gateway/s3_errors.h"
#include "gateway/server/files.h"
#include "io/file.h"
#include "meta/rocksdb_meta_store.h"

namespace cairn::gateway::server {

namespace {

// Request heads larger than this are refused (RequestHeaderSectionTooLarge). S3 documents 8 KB
// of headers plus 2 KB of user metadata; a little room is left above that.
constexpr uint32_t kMaxHeaderBytes = 16 * 1024;

std::string RandomString(std::string_view alphabet, size_t n) {
  std::random_device rd;
  std::string out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out += alphabet[rd() % alphabet.size()];
  return out;
}

Result<std::pair<std::string, uint16_t>> ParseListen(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return Status::ConfigError("listen address must be HOST:PORT: " + listen);
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port = listen.substr(colon + 1);
  char* end = nullptr;
  const long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || p < 0 || p > 65535) {
    return Status::ConfigError("listen port is not a number in [0, 65535]: " + listen);
  }
  return std::make_pair(host.empty() ? std::string("0.0.0.0") : host, static_cast<uint16_t>(p));
}

// Answers a connection that has no parsed request (so no HttpExchange) with an S3 error, then
// the caller closes it.
void SendErrorAndClose(int fd, const S3Error& error) {
  const std::string body = ErrorXml(error, "", "");
  const auto reason = http::obsolete_reason(http::int_to_status(static_cast<unsigned>(error.http_status)));
  const std::string resp = "HTTP/1.1 " + std::to_string(error.http_status) + " " +
                           std::string(reason.data(), reason.size()) +
                           "\r\nContent-Type: application/xml\r\nContent-Length: " + std::to_string(body.size()) +
                           "\r\nConnection: close\r\n\r\n" + body;
  (void)::send(fd, resp.data(), resp.size(), MSG_NOSIGNAL);
}

// DATA/node.json: which cluster node the directory belongs to (ServerOptions::node_id). A node's
// id names its target in the chain table, so a directory served under another id would pass
// for a replica it is not.
Status ClaimDataDir(const std::string& dir, const std::string& node_id, const std::string& cluster) {
  const std::string path = dir + "/node.json";
  auto existing = ReadSmallFile(path);
  if (!existing.ok() && !existing.status().IsNotFound()) return existing.status();
  if (existing.ok()) {
    const auto j = nlohmann::json::parse(*existing, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("node_id") || !j["node_id"].is_string() ||
        !j.contains("cluster") || !j["cluster"].is_string()) {
      return Status::Corruption(path + " is not a node record ({\"node_id\": ..., \"cluster\": ...})");
    }
    const std::string owner = j["node_id"].get<std::string>();
    const std::string owner_cluster = j["cluster"].get<std::string>();
    if (node_id.empty()) {
      return Status::ConfigError("the data directory " + dir + " belongs to node " + owner + " of cluster " +
                                 owner_cluster + " (" + path + "); start it with --cluster ... --node-id " + owner +
                                 ", or use another directory for a single node");
    }
    if (owner != node_id || owner_cluster != cluster) {
      return Status::ConfigError("the data directory " + dir + " belongs to node " + owner + " of cluster " +
                                 owner_cluster + " (" + path + "), not to node " + node_id + " of cluster " + cluster +
                                 "; every node needs a directory of its own");
    }
    return Status::OK();
  }
  if (node_id.empty()) return Status::OK();
  const nlohmann::json record = {{"node_id", node_id}, {"cluster", cluster}};
  CAIRN_LOG_INFO("data directory {} now belongs to node {} of cluster {}", dir, node_id, cluster);
  return CreateFileDurably(path, record.dump() + "\n", 0644);
}

S3Error HeadTooLarge() {
  return Make(S3Code::kRequestHeaderSectionTooLarge, "Your request header section exceeds the maximum allowed size.");
}

}  // namespace

std::string RootCanonicalId() { return crypto::HexEncode(crypto::Sha256(std::string_view("cairn:user:root"))); }

Result<Credentials> LoadOrCreateRootCredentials(const std::string& data_dir, bool* generated) {
  *generated = false;
  const char* env_access = std::getenv("CAIRN_ROOT_ACCESS_KEY");
  const char* env_secret = std::getenv("CAIRN_ROOT_SECRET_KEY");
  const bool have_access = env_access != nullptr && *env_access != '\0';
  const bool have_secret = env_secret != nullptr && *env_secret != '\0';
  if (have_access != have_secret) {
    return Status::ConfigError("set both CAIRN_ROOT_ACCESS_KEY and CAIRN_ROOT_SECRET_KEY, or neither");
  }
  if (have_access) {
    if (std::strlen(env_access) < 3 || std::strlen(env_secret) < 8) {
      return Status::ConfigError("CAIRN_ROOT_ACCESS_KEY needs at least 3 characters and CAIRN_ROOT_SECRET_KEY 8");
    }
    return Credentials{env_access, env_secret};
  }
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return Status::IOError("create " + data_dir + ": " + ec.message());
  const std::string path = data_dir + "/credentials";
  auto existing = ReadSmallFile(path);
  if (existing.ok()) {
    Credentials c;
    std::istringstream in(*existing);
    std::string line;
    while (std::getline(in, line)) {
      const size_t eq = line.find('=');
      if (eq == std::string::npos || line.starts_with('#')) continue;
      const std::string name = line.substr(0, eq);
      const std::string value = line.substr(eq + 1);
      if (name == "AWS_ACCESS_KEY_ID") c.access_key = value;
      if (name == "AWS_SECRET_ACCESS_KEY") c.secret_key = value;
    }
    if (c.access_key.empty() || c.secret_key.empty()) {
      return Status::ConfigError(path + " lacks AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY");
    }
    return c;
  }
  // Unreadable is not absent: new credentials would lock out whoever holds the old ones.
  if (!existing.status().IsNotFound()) return existing.status();
  Credentials c;
  c.access_key = "CAIRN" + RandomString("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 15);
  c.secret_key = RandomString("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 40);
  const std::string contents =
      "# Cairn root credentials, generated at first start. Keep this file private.\n"
      "# Load them into a shell with:  set -a; . " +
      path +
      "; set +a\n"
      "AWS_ACCESS_KEY_ID=" +
      c.access_key + "\nAWS_SECRET_ACCESS_KEY=" + c.secret_key + "\n";
  CAIRN_RETURN_IF_ERROR(CreateFileDurably(path, contents, 0600));
  *generated = true;
  return c;
}

// ---- Open and close --------------------------------------------------------------------------

struct Server::Connection {
  int fd = -1;
  bool idle = true;  // GUARDED_BY(Server::mu_): waiting for a request head
};

Result<std::unique_ptr<Server>> Server::Open(ServerOptions options) {
  std::unique_ptr<Server> s(new Server());
  s->options_ = std::move(options);
  const std::string dir = s->options_.config.server.data_dir;
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return Status::FromErrno(errno, "mkdir " + dir);

  // Before the lock: a directory of another node is refused as such even while that node runs
  // (node.json is created with link(2), atomically, so reading it unlocked is safe).
  CAIRN_RETURN_IF_ERROR(ClaimDataDir(dir, s->options_.node_id, s->options_.cluster_name));

  const std::string lock_path = dir + "/LOCK";
  s->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (s->lock_fd_ < 0) return Status::FromErrno(errno, "open " + lock_path);
  if (::flock(s->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return Status::Busy("another process is using the data directory " + dir);
  }

  CAIRN_ASSIGN_OR_RETURN(io::Backend backend, io::ParseBackend(s->options_.config.engine.io_backend));
  CAIRN_ASSIGN_OR_RETURN(s->env_, io::Env::Create(backend));
  engine::EngineOptions eo;
  eo.config = s->options_.config.engine;
  CAIRN_LOG_INFO("opening the engine in {}/engine ({} back end)", dir, io::BackendName(s->env_->backend()));
  CAIRN_ASSIGN_OR_RETURN(s->engine_, engine::Engine::Open(s->env_.get(), dir + "/engine", eo));
  {
    const engine::EngineStats es = s->engine_->Stats();
    CAIRN_LOG_INFO("engine open: {} chunks, recovered in {} ms ({} bytes rescanned, {} from a checkpoint)", es.chunks,
                   es.recovery_micros / 1000, es.recovery_scanned_bytes,
                   es.recovered_from_checkpoint ? "starting" : "not starting");
  }
  CAIRN_LOG_INFO("opening the metadata store in {}/meta", dir);
  const bool cluster_data = static_cast<bool>(s->options_.make_meta);
  if (cluster_data) {
    s->meta_ = s->options_.make_meta();
    s->chunks_ = s->options_.make_chunks(s->engine_.get());
  } else {
    CAIRN_ASSIGN_OR_RETURN(s->meta_, meta::RocksDbMetaStore::Open(dir + "/meta"));
    s->chunks_ = std::make_unique<object::EngineChunkStore>(s->engine_.get());
  }
  // Commits run on the connection threads (ObjectWriter::FinishSync); this pool only cleans up
  // after writers abandoned without a finish.
  s->blocking_ = std::make_unique<ThreadPool>(2);
  s->objects_ = std::make_unique<object::ObjectStore>(s->chunks_.get(), s->meta_.get(), s->blocking_.get());

  if (!cluster_data) {  // a cluster's chunks are spread over the nodes: no one node can tell orphans
    CAIRN_ASSIGN_OR_RETURN(s->orphans_collected_, s->objects_->CollectOrphans());
    if (s->orphans_collected_ > 0) {
      CAIRN_LOG_INFO("start-up: deleted {} chunks no committed object referenced", s->orphans_collected_);
    }
  }

  crypto::SealKey seal_key{};
  if (s->options_.seal_key) {
    seal_key = *s->options_.seal_key;
  } else {
    CAIRN_ASSIGN_OR_RETURN(std::vector<meta::AccessKeyRecord> stored_keys, s->meta_->ListAccessKeys());
    CAIRN_ASSIGN_OR_RETURN(seal_key, LoadOrCreateSealKey(dir, !stored_keys.empty()));
  }
  s->identities_ = std::make_unique<Identities>(s->meta_.get(), s->options_.root.access_key,
                                                s->options_.root.secret_key, RootCanonicalId(), seal_key);
  if (s->options_.identity_refresh.count() == 0) {
    // Otherwise the metadata may not be reachable yet (a cluster still forming): the maintenance
    // loop loads them, and the root credentials work meanwhile.
    CAIRN_RETURN_IF_ERROR(s->identities_->Load());
    CAIRN_LOG_INFO("identities: {} users, {} access keys", s->identities_->ListUsers().size(),
                   s->identities_->ListKeys("").size());
  }

  S3ServiceOptions so;
  so.region = s->options_.region;
  so.domains = s->options_.domains;
  so.status = s->options_.status;
  if (!so.status) {
    Server* const server = s.get();
    so.status = [server](bool) -> Result<std::string> { return server->SingleNodeStatus(); };
  }
  s->s3_ = std::make_unique<S3Service>(s->objects_.get(), s->meta_.get(), s->identities_.get(), std::move(so));
  return s;
}

Server::~Server() {
  Stop(std::chrono::milliseconds(0));
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Status Server::Start() {
  CAIRN_ASSIGN_OR_RETURN(auto hp, ParseListen(options_.config.server.listen));
  const auto& [host, port] = hp;
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  if (host.find(':') != std::string::npos) {
    family = AF_INET6;
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    if (::inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) != 1) return Status::ConfigError("bad address " + host);
    len = sizeof(sockaddr_in6);
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    const std::string h = host == "localhost" ? "127.0.0.1" : host;
    if (::inet_pton(AF_INET, h.c_str(), &a4->sin_addr) != 1) return Status::ConfigError("bad address " + host);
    len = sizeof(sockaddr_in);
  }
  listen_family_ = family;
  listen_fd_ = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return Status::FromErrno(errno, "socket");
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    return Status::FromErrno(errno, "bind " + options_.config.server.listen);
  }
  if (::listen(listen_fd_, 1024) != 0) return Status::FromErrno(errno, "listen");
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &blen);
  char addr[INET6_ADDRSTRLEN] = {};
  uint16_t bound_port = 0;
  if (family == AF_INET6) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&bound);
    ::inet_ntop(AF_INET6, &a6->sin6_addr, addr, sizeof addr);
    bound_port = ntohs(a6->sin6_port);
    endpoint_ = "http://[" + std::string(addr) + "]:" + std::to_string(bound_port);
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&bound);
    ::inet_ntop(AF_INET, &a4->sin_addr, addr, sizeof addr);
    bound_port = ntohs(a4->sin_port);
    endpoint_ = "http://" + std::string(addr) + ":" + std::to_string(bound_port);
  }
  acceptor_ = std::thread([this] { AcceptLoop(); });
  maintenance_ = std::thread([this] { MaintenanceLoop(); });
  CAIRN_LOG_INFO("listening on {}", endpoint_);
  return Status::OK();
}

void Server::Stop(std::chrono::milliseconds grace) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  Drain(grace);
  Quiesce();
  if (engine_) {
    if (Status s = engine_->Close(); !s.ok()) CAIRN_LOG_ERROR("closing the engine: {}", s.ToString());
    engine_.reset();
  }
  CAIRN_LOG_INFO("stopped");
}

void Server::Quiesce() {
  Drain(std::chrono::milliseconds(0));
  // No request is in flight any more: the S3 layer goes, then the blocking pool runs what is
  // queued on it (commits and reclaims, which use the object store and the layers below), then
  // the layers close top-down.
  s3_.reset();
  identities_.reset();
  blocking_.reset();
  objects_.reset();
  chunks_.reset();
  meta_.reset();
}

void Server::Drain(std::chrono::milliseconds grace) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (drained_) return;
    drained_ = true;
    stopping_ = true;
    // Idle connections go at once; busy ones finish their request and then close.
    for (const auto& c : conns_) {
      if (c->idle) ::shutdown(c->fd, SHUT_RDWR);
    }
  }
  cv_.notify_all();
  if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  if (maintenance_.joinable()) maintenance_.join();
  {
    std::unique_lock<std::mutex> l(mu_);
    if (!cv_.wait_for(l, grace, [&] { return conns_.empty(); })) {
      CAIRN_LOG_WARN("shutdown: {} connections still busy after the grace period; closing them", conns_.size());
      for (const auto& c : conns_) ::shutdown(c->fd, SHUT_RDWR);
      cv_.wait(l, [&] { return conns_.empty(); });
    }
  }
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
  }
}

// ---- Connections -----------------------------------------------------------------------------

void Server::AcceptLoop() {
  while (true) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      if (err == EINTR || err == ECONNABORTED) continue;
      {
        std::lock_guard<std::mutex> l(mu_);
        if (stopping_) return;
      }
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        CAIRN_LOG_WARN("accept: {}", std::strerror(err));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      CAIRN_LOG_ERROR("accept: {}", std::strerror(err));
      return;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(options_.io_timeout.count());
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    auto conn = std::make_shared<Connection>();
    conn->fd = fd;
    bool refuse = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_) {
        ::close(fd);
        return;
      }
      refuse = conns_.size() >= options_.max_connections;
      if (!refuse) conns_.insert(conn);
    }
    if (refuse) {
      SendErrorAndClose(fd, Make(S3Code::kSlowDown, "Too many connections."));
      ::close(fd);
      continue;
    }
    std::thread([this, conn] { Serve(conn); }).detach();
  }
}

void Server::Serve(std::shared_ptr<Connection> conn) {
  boost::asio::io_context io;  // sync operations only; never run
  boost::asio::ip::tcp::socket socket(io);
  boost::system::error_code ec;
  socket.assign(listen_family_ == AF_INET6 ? boost::asio::ip::tcp::v6() : boost::asio::ip::tcp::v4(), conn->fd, ec);
  boost::beast::flat_buffer buffer;
  // Beast sizes each read by the free capacity (512 bytes at first): without room reserved a
  // body arrives 512 bytes per recv.
  buffer.reserve(64 * 1024);
  while (!ec) {
    RequestParser parser;
    parser.header_limit(kMaxHeaderBytes);
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // sizes are the S3 layer's call (EntityTooLarge)
    boost::beast::error_code rec;
    http::read_header(socket, buffer, parser, rec);
    {
      std::lock_guard<std::mutex> l(mu_);
      conn->idle = false;
    }
    if (rec) {
      CAIRN_LOG_DEBUG("connection: request head not read: {}", rec.message());
      if (rec == http::error::header_limit || rec == http::error::buffer_overflow) {
        SendErrorAndClose(conn->fd, HeadTooLarge());
      } else if (rec != http::error::end_of_stream && rec != boost::asio::error::eof &&
                 rec != boost::asio::error::connection_reset && rec != boost::asio::error::would_block &&
                 rec != boost::asio::error::try_again && (buffer.size() > 0 || parser.got_some())) {
        // Bytes arrived that are not an HTTP/1.1 request head. (Beast takes what it has parsed out
        // of the buffer, so an empty buffer does not mean that nothing came: ask the parser.)
        SendErrorAndClose(conn->fd, Make(S3Code::kInvalidRequest, "The request is not valid HTTP/1.1."));
      }
      break;
    }
    // Beast's header_limit does not count the request line when the head arrives in one read;
    // the whole head is measured here so the 16 KiB limit is exact either way.
    size_t head_bytes = parser.get().method_string().size() + parser.get().target().size() + 12;
    for (const auto& f : parser.get().base()) head_bytes += f.name_string().size() + f.value().size() + 4;
    if (head_bytes > kMaxHeaderBytes) {
      SendErrorAndClose(conn->fd, HeadTooLarge());
      break;
    }
    HttpExchange ex(socket, buffer, parser);
    if (!ServeInternal(ex)) s3_->Handle(ex);
    if (!ex.body_complete() && !ex.DrainBody(HttpExchange::kMaxDrainBytes)) ex.set_close();
    bool stop;
    {
      std::lock_guard<std::mutex> l(mu_);
      conn->idle = true;
      stop = stopping_;
    }
    if (stop || !ex.keep_alive()) break;
  }
  ::shutdown(conn->fd, SHUT_WR);
  socket.close(ec);  // closes conn->fd
  std::lock_guard<std::mutex> l(mu_);
  conns_.erase(conn);
  cv_.notify_all();
}

bool Server::ServeInternal(HttpExchange& ex) {
  if (ex.method() != "GET" && ex.method() != "HEAD") return false;
  const std::string_view target = ex.target();
  if (target != "/health" && target != "/metrics") return false;
  if (ex.Header("authorization")) return false;
  ResponseHead head;
  head.status = 200;
  std::string body;
  if (target == "/health") {
    head.Add("Content-Type", "text/plain");
    body = "ok\n";
  } else {
    head.Add("Content-Type", "text/plain; version=0.0.4");
    body = MetricsText();
  }
  (void)ex.SendResponse(head, body);
  return true;
}

std::string Server::MetricsText() {
  auto& reg = metrics::Registry::Default();
  const engine::EngineStats es = engine_->Stats();
  auto gauge = [&](const char* name, const char* help, double v) { reg.GetGauge(name, help)->Set(v); };
  gauge("cairn_engine_chunks", "Live chunks in the engine", static_cast<double>(es.chunks));
  gauge("cairn_engine_live_bytes", "Bytes of live chunks", static_cast<double>(es.live_bytes));
  gauge("cairn_engine_dead_bytes", "Bytes of deleted or replaced chunks not yet compacted",
        static_cast<double>(es.dead_bytes));
  gauge("cairn_engine_index_memory_bytes", "Memory held by the chunk index",
        static_cast<double>(es.index_memory_bytes));
  gauge("cairn_engine_appends", "Chunk appends since start", static_cast<double>(es.appends));
  gauge("cairn_engine_deletes", "Chunk deletes since start", static_cast<double>(es.deletes));
  gauge("cairn_engine_group_commits", "fdatasync calls that acknowledged writes",
        static_cast<double>(es.group_commits));
  gauge("cairn_engine_corruptions_detected", "Reads refused and records skipped for bad checksums",
        static_cast<double>(es.corruptions_detected));
  gauge("cairn_engine_compactions", "Segments compacted since start", static_cast<double>(es.compactions));
  gauge("cairn_engine_compaction_reclaimed_bytes", "Bytes returned by compaction",
        static_cast<double>(es.compaction_bytes_reclaimed));
  gauge("cairn_engine_segments", "Segment files", static_cast<double>(es.segments.size()));
  if (auto ms = meta_->Stats(); ms.ok()) {
    for (const auto& [name, value] : *ms) {
      reg.GetGauge("cairn_meta_" + name, "Metadata store figure (docs/design/meta.md)")
          ->Set(static_cast<double>(value));
    }
  }
  gauge("cairn_server_connections", "Open client connections", [&] {
    std::lock_guard<std::mutex> l(mu_);
    return static_cast<double>(conns_.size());
  }());
  return reg.PrometheusText();
}

std::string Server::SingleNodeStatus() const {
  // The shape of the cluster's status (cluster/node.h, StatusJson), for one node that is its
  // own cluster: no etcd, no manager, no chain table yet (docs/design/cluster.md, "The single
  // node is the same code").
  using Json = nlohmann::json;
  const Json node = {
      {"id", "local"}, {"rpc", ""}, {"s3", endpoint_}, {"zone", ""}, {"targets", Json::array({"local/0"})},
      {"lease", 0}};
  const Json status = {
      {"mode", "single"},
      {"node", "local"},
      {"cluster", nullptr},
      {"manager", nullptr},
      {"nodes", Json::array({node})},
      {"chains", Json::array()},
      {"resync", Json::array()},
      {"peer_reports", Json::array()},
      {"evictions", Json::array()},
      {"fenced", false},
      {"is_manager", false},
      {"replicas", 1},
      {"chain_count", 0},
  };
  return status.dump();
}

// ---- Maintenance -----------------------------------------------------------------------------

void Server::MaintenanceLoop() {
  // Every 10 s: hand memory that malloc keeps in its free lists back to the kernel (small
  // allocations of many connection threads would otherwise stay resident once the traffic
  // stops). Every maintenance_interval: expire abandoned uploads.
  // With identity_refresh, users and keys are re-read that often.
  constexpr auto kTrimInterval = std::chrono::seconds(10);
  const auto now = std::chrono::steady_clock::now();
  // A cluster node expires uploads a while after it started (its cluster may still be forming).
  auto next_expiry = options_.identity_refresh.count() > 0 ? now + std::chrono::seconds(60) : now;
  auto next_trim = now;
  const auto wake = options_.identity_refresh.count() > 0
                        ? std::min<std::chrono::milliseconds>(options_.identity_refresh, kTrimInterval)
                        : std::chrono::milliseconds(kTrimInterval);
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    l.unlock();
    if (options_.identity_refresh.count() > 0) {
      if (Status s = identities_->Load(); !s.ok()) CAIRN_LOG_DEBUG("identities: reload: {}", s.ToString());
    }
    if (std::chrono::steady_clock::now() >= next_expiry) {
      ExpireUploads();
      next_expiry = std::chrono::steady_clock::now() + options_.maintenance_interval;
    }
    if (std::chrono::steady_clock::now() >= next_trim) {
      malloc_trim(0);
      next_trim = std::chrono::steady_clock::now() + kTrimInterval;
    }
    l.lock();
    cv_.wait_for(l, wake, [&] { return stopping_; });
  }
}

void Server::ExpireUploads() {
  auto buckets = meta_->ListBuckets();
  if (!buckets.ok()) return;
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  const int64_t cutoff = now_ms - std::chrono::duration_cast<std::chrono::milliseconds>(options_.upload_expiry).count();
  uint64_t aborted = 0;
  for (const auto& b : *buckets) {
    meta::ListUploadsOptions opts;
    while (true) {
      auto page = meta_->ListUploads(b.name, opts);
      if (!page.ok()) break;
      for (const auto& u : page->uploads) {
        if (u.initiated_ms >= cutoff) continue;
        auto chunks = meta_->AbortUpload(b.name, u.key, u.upload_id);
        if (!chunks.ok()) continue;
        if (Status s = objects_->Reclaim(*chunks); !s.ok()) CAIRN_LOG_WARN("expiring upload: {}", s.ToString());
        ++aborted;
      }
      if (!page->is_truncated) break;
      opts.key_marker = page->next_key_marker;
      opts.upload_id_marker = page->next_upload_id_marker;
    }
  }
  if (aborted > 0) CAIRN_LOG_INFO("maintenance: aborted {} multipart uploads older than the expiry", aborted);
}

}  // namespace cairn::gateway::server
