// chain_kv: writes and checks keys through the chains of a running cluster, from outside it, as
// the loopback cluster tests need (tests/e2e/test_cluster.py).
//
//   chain_kv --etcd URL --cluster NAME --secret-file F write --seconds S --threads T --log FILE
//            [--value-size N] [--keys K]
//     T writers, each over its own K keys (default 200), write for S seconds; every acknowledged
//     write is appended to FILE as "A <key> <n>", every failed one as "F <key> <n>" (the value of
//     write n of a key is a function of key, n and N). Prints one JSON line: {"acked", "failed",
//     "max_gap_ms", "seconds", "bytes"} (max_gap_ms: the longest time any writer went without an
//     acknowledgement, i.e. how long writes were unavailable).
//   chain_kv ... verify --log FILE
//     Reads every key of FILE from every serving member of its chain; each must hold the last
//     acknowledged value, or the value of a write that failed after it (a write whose answer was
//     lost may have applied). Prints {"keys", "reads", "bad"}; exits 1 when anything is wrong.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cluster/etcd.h"
#include "cluster/node.h"
#include "cluster/replica_service.h"
#include "replication/chain_client.h"

namespace cairn {
namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string etcd, cluster = "default", secret_file, mode, log;
  int seconds = 10, threads = 2, keys = 200;
  size_t value_size = 0;  // 0: just "<key>#<n>"
};

// The value of write n of `key`.
std::string ValueOf(const std::string& key, const std::string& n, size_t size) {
  std::string v = key + "#" + n;
  if (v.size() < size) v.resize(size, static_cast<char>('a' + (v.size() % 26)));
  return v;
}

int Usage() {
  std::cerr << "usage: chain_kv --etcd URL [--cluster NAME] --secret-file F (write --seconds S --threads T | verify)"
               " --log FILE\n";
  return 2;
}

// Keeps a copy of the replication table, refreshed every 200 ms and on request.
class Table {
 public:
  Table(cluster::EtcdClient* etcd, std::string prefix) : etcd_(etcd), prefix_(std::move(prefix)) {
    Refresh();
    thread_ = std::thread([this] {
      std::unique_lock lock(mu_);
      while (!stop_) {
        cv_.wait_for(lock, std::chrono::milliseconds(200));
        if (stop_) break;
        lock.unlock();
        Refresh();
        lock.lock();
      }
    });
  }
  ~Table() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void Refresh() {
    auto t = cluster::ReadReplicationTable(etcd_, prefix_);
    if (!t.ok()) return;
    std::lock_guard lock(mu_);
    table_ = std::move(*t);
  }
  void Poke() { cv_.notify_all(); }
  std::optional<replication::ChainView> View(uint32_t chain) {
    std::lock_guard lock(mu_);
    auto it = table_.views.find(chain);
    if (it == table_.views.end()) return std::nullopt;
    return it->second;
  }
  std::optional<std::string> Address(uint32_t node) {
    std::lock_guard lock(mu_);
    auto it = table_.peers.find(node);
    if (it == table_.peers.end()) return std::nullopt;
    return it->second.rpc_address;
  }
  size_t chains() {
    std::lock_guard lock(mu_);
    return table_.views.size();
  }

 private:
  cluster::EtcdClient* etcd_;
  const std::string prefix_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  cluster::ReplicationTable table_;
  std::thread thread_;
};

uint32_t ChainOf(const std::string& key, size_t chains) {
  return static_cast<uint32_t>(std::hash<std::string>{}(key) % chains);
}

int Run(const Args& args) {
  auto secret = cluster::LoadClusterSecret(args.secret_file);
  if (!secret.ok()) {
    std::cerr << secret.status() << "\n";
    return 2;
  }
  cluster::EtcdOptions eo;
  eo.endpoints = {args.etcd};
  auto etcd = cluster::EtcdClient::Connect(eo);
  if (!etcd.ok()) {
    std::cerr << etcd.status() << "\n";
    return 2;
  }
  Table table(etcd->get(), "/cairn/" + args.cluster + "/");
  if (table.chains() == 0) {
    std::cerr << "no chain table in etcd\n";
    return 2;
  }
  const size_t chains = table.chains();
  replication::ChainClientOptions co;
  co.name = "chain_kv";
  co.secret = *secret;
  co.deadline = std::chrono::milliseconds(8000);
  co.view = [&](uint32_t c) { return table.View(c); };
  co.address = [&](uint32_t n) { return table.Address(n); };
  co.refresh = [&](uint32_t) { table.Poke(); };
  replication::ChainClient client(co);

  if (args.mode == "write") {
    std::ofstream log(args.log, std::ios::app);
    std::mutex log_mu;
    std::atomic<uint64_t> acked{0}, failed{0}, bytes{0};
    const auto start = Clock::now();
    std::atomic<int64_t> max_gap_ms{0};
    const auto end = Clock::now() + std::chrono::seconds(args.seconds);
    std::vector<std::thread> writers;
    for (int t = 0; t < args.threads; ++t) {
      writers.emplace_back([&, t] {
        auto last_ack = Clock::now();
        for (uint64_t i = 0; Clock::now() < end; ++i) {
          const std::string key = "t" + std::to_string(t) + "-k" + std::to_string(i % static_cast<uint64_t>(args.keys));
          const std::string value = ValueOf(key, std::to_string(i), args.value_size);
          auto r = client.Write(ChainOf(key, chains), key, value);
          const auto now = Clock::now();
          std::lock_guard lock(log_mu);
          if (r.ok()) {
            const int64_t gap = std::chrono::duration_cast<std::chrono::milliseconds>(now - last_ack).count();
            if (gap > max_gap_ms) max_gap_ms = gap;
            last_ack = now;
            ++acked;
            bytes += value.size();
            log << "A " << key << " " << i << "\n";
          } else {
            ++failed;
            log << "F " << key << " " << i << "\n";
          }
          log.flush();
        }
      });
    }
    for (auto& w : writers) w.join();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    std::cout << "{\"acked\": " << acked << ", \"failed\": " << failed << ", \"max_gap_ms\": " << max_gap_ms
              << ", \"seconds\": " << seconds << ", \"bytes\": " << bytes << "}" << std::endl;
    return 0;
  }

  // verify
  std::ifstream log(args.log);
  std::map<std::string, std::set<std::string>> allowed;  // key -> values it may hold
  std::string kind, key, value;
  while (log >> kind >> key >> value) {
    if (kind == "A") allowed[key] = {ValueOf(key, value, args.value_size)};
    else allowed[key].insert(ValueOf(key, value, args.value_size));  // a failed write may have applied
  }
  uint64_t reads = 0, bad = 0;
  for (const auto& [k, values] : allowed) {
    const uint32_t chain = ChainOf(k, chains);
    auto view = table.View(chain);
    if (!view || view->members.empty()) {
      ++bad;
      std::cerr << "chain " << chain << ": no members\n";
      continue;
    }
    for (const replication::Member& m : view->members) {
      auto r = client.ReadFrom(chain, k, m.id.node);
      ++reads;
      if (!r.ok() || !r->value || values.count(*r->value) == 0) {
        ++bad;
        std::cerr << "key " << k << ": "
                  << (r.ok() ? (r->value ? r->value->substr(0, 64) : std::string("<absent>")) : r.status().ToString())
                  << "\n";
      }
    }
  }
  std::cout << "{\"keys\": " << allowed.size() << ", \"reads\": " << reads << ", \"bad\": " << bad << "}" << std::endl;
  return bad == 0 ? 0 : 1;
}

}  // namespace
}  // namespace cairn

int main(int argc, char** argv) {
  cairn::Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : std::string(); };
    if (a == "--etcd") args.etcd = next();
    else if (a == "--cluster") args.cluster = next();
    else if (a == "--secret-file") args.secret_file = next();
    else if (a == "--log") args.log = next();
    else if (a == "--seconds") args.seconds = std::stoi(next());
    else if (a == "--threads") args.threads = std::stoi(next());
    else if (a == "--keys") args.keys = std::max(1, std::stoi(next()));
    else if (a == "--value-size") args.value_size = std::stoul(next());
    else if (a == "write" || a == "verify") args.mode = a;
    else return cairn::Usage();
  }
  if (args.etcd.empty() || args.secret_file.empty() || args.mode.empty() || args.log.empty()) return cairn::Usage();
  return cairn::Run(args);
}
