// The single-node S3 server: a data directory, the layers that live in it, and an HTTP/1.1
// listener in front of them.
//
//   auto server = Server::Open(config, root_credentials);   // storage opened and recovered
//   (*server)->Start();                                      // listening
//   ...                                                      // SIGTERM arrives
//   (*server)->Stop(std::chrono::seconds(30));               // drained and closed
//
// Data directory layout: engine/ (chunk segments, docs/formats/engine.md), meta/ (RocksDB,
// docs/formats/meta.md), credentials (root keys, mode 0600, when generated), server.key (seals
// the secrets of user access keys, mode 0600), node.json (cluster mode: the node id and cluster
// the directory belongs to) and LOCK (flock: one server per directory).
//
// Connections: one acceptor thread, and a thread per connection serving its requests one after
// another (keep-alive). GET /health and GET /metrics answer without authentication when the
// request carries no signature (a signed GET /health is a ListObjects of bucket "health").
//
// Start-up deletes chunks that no committed record references (the leftovers of PUTs a crash
// interrupted). While running, a maintenance thread aborts multipart uploads older than the
// configured expiry and reclaims their parts.
//
// Thread-safety: Open, Start and Stop are called from one thread; everything else is internal.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/config.h"
#include "common/crypto.h"
#include "common/executor.h"
#include "common/result.h"
#include "gateway/server/s3_service.h"
#include "gateway/sigv4.h"
#include "object/object_store.h"

namespace cairn::io {
class Env;
}
namespace cairn::engine {
class Engine;
}

namespace cairn::gateway::server {

struct ServerOptions {
  Config config;
  Credentials root;
  std::vector<std::string> domains = {"localhost"};
  std::string region = "us-east-1";
  // Idle keep-alive connections and stalled transfers are dropped after this long.
  std::chrono::seconds io_timeout{120};
  // Connections beyond this many are refused with 503 SlowDown.
  size_t max_connections = 1024;
  // Multipart uploads older than this are aborted. Default 7 days.
  std::chrono::seconds upload_expiry{7 * 24 * 3600};
  // How often the maintenance pass runs. Default 1 hour.
  std::chrono::seconds maintenance_interval{3600};
  // Cluster mode: this node's id and its cluster's name. At first start the data directory
  // records them in node.json; later, Open refuses to serve it as another node, another cluster
  // or the single node (a directory shared by mistake). Empty (the default): the single node,
  // which refuses a directory with a node.json.
  std::string node_id;
  std::string cluster_name;
  // S3ServiceOptions::status: the admin API's status document. Default: the single node's
  // ({"mode": "single", "node": "local", ...}).
  std::function<Result<std::string>(bool digests)> status = nullptr;

  // Cluster mode's data path (docs/design/cluster.md): where metadata and chunks live instead of
  // this directory's RocksDB and engine. The engine still opens (it holds this node's replicas'
  // blobs, engine(), which make_chunks is given). Null: the single node's.
  std::function<std::unique_ptr<meta::MetaStore>()> make_meta;
  std::function<std::unique_ptr<object::ChunkStore>(engine::Engine* engine)> make_chunks;
  // The key access-key secrets are sealed with. Default: server.key in the data directory (one
  // node's own); a cluster derives one from its secret, so that every node opens every key.
  std::optional<crypto::SealKey> seal_key;
  // Users and keys are re-read from the metadata this often (0: only at start). In a cluster
  // another node may create or delete them; a failed read at start is then not fatal either.
  std::chrono::milliseconds identity_refresh{0};
};

class Server {
 public:
  // Opens the storage in config.server.data_dir (creating it), recovers it and collects orphaned
  // chunks. Error: Busy when another process holds the directory's lock; ConfigError when the
  // directory belongs to another node (node.json, see ServerOptions::node_id).
  static Result<std::unique_ptr<Server>> Open(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds config.server.listen and starts accepting. Error: IOError (address in use, ...).
  Status Start();
  // "http://127.0.0.1:9000": the bound address (the real port when 0 was asked for).
  std::string endpoint() const { return endpoint_; }

  // Stops accepting, closes idle connections, lets requests in flight finish for up to `grace`,
  // then closes what is left; the storage stays open (a cluster node's replicas still write blobs
  // into the engine until the node has left). Idempotent.
  void Drain(std::chrono::milliseconds grace);
  // After Drain: finishes the background work (commits and reclaims queued on the blocking pool)
  // and closes the layers above the engine (S3, objects, chunks, metadata). Idempotent.
  void Quiesce();
  // Drain, Quiesce, then closes the engine (a final checkpoint). Idempotent.
  void Stop(std::chrono::milliseconds grace);

  // Orphaned chunks deleted at start-up.
  uint64_t orphans_collected() const { return orphans_collected_; }
  // The engine of the data directory (in cluster mode, the store of this node's blobs).
  engine::Engine* engine() const { return engine_.get(); }

 private:
  struct Connection;
  Server() = default;

  void AcceptLoop();
  void Serve(std::shared_ptr<Connection> conn);
  // Answers GET /health and GET /metrics; false when the request is not one of them.
  bool ServeInternal(HttpExchange& ex);
  std::string MetricsText();
  // The admin API's status document of the single node.
  std::string SingleNodeStatus() const;
  void MaintenanceLoop();
  void ExpireUploads();

  ServerOptions options_;
  int lock_fd_ = -1;
  std::unique_ptr<io::Env> env_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<meta::MetaStore> meta_;
  std::unique_ptr<object::ChunkStore> chunks_;
  std::unique_ptr<ThreadPool> blocking_;
  std::unique_ptr<object::ObjectStore> objects_;
  std::unique_ptr<Identities> identities_;
  std::unique_ptr<S3Service> s3_;
  uint64_t orphans_collected_ = 0;

  int listen_fd_ = -1;
  int listen_family_ = 0;  // AF_INET or AF_INET6
  std::string endpoint_;
  std::thread acceptor_;
  std::thread maintenance_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                        // GUARDED_BY(mu_)
  bool drained_ = false;                         // GUARDED_BY(mu_)
  bool stopped_ = false;                         // GUARDED_BY(mu_)
  std::set<std::shared_ptr<Connection>> conns_;  // GUARDED_BY(mu_)
};

// Root credentials: CAIRN_ROOT_ACCESS_KEY and CAIRN_ROOT_SECRET_KEY when both are set (an error
// when only one is), else the `credentials` file in `data_dir`, else fresh random keys written
// there (mode 0600). *generated says whether they were just made.
Result<Credentials> LoadOrCreateRootCredentials(const std::string& data_dir, bool* generated);

// The canonical user id S3 reports for the root user: 64 hex digits, stable across restarts.
std::string RootCanonicalId();

}  // namespace cairn::gateway::server
