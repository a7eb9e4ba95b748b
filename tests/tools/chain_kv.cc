// chain_kv: writes and checks keys through the chains of a running cluster, from outside it, as
// the loopback cluster tests need (tests/e2e/test_cluster.py).
//
//   chain_kv --etcd URL --cluster NAME --secret-file F write --seconds S --threads T --log FILE
//            [--value-size N] [--keys K | --unique-keys] [--prefix P] [--until-file F]
//     T writers, each over its own K keys (default 200; with --unique-keys every write is a key of
//     its own, so that every acknowledged write is checked, not only each key's last), write for
//     S seconds, or until file F exists (S then bounds the wait); every acknowledged
//     write is appended to FILE as "A <key> <n>", every failed one as "F <key> <n>" (the value of
//     write n of a key is a function of key, n and N). Prints one JSON line: {"acked", "failed",
//     "max_gap_ms", "seconds", "bytes"} (max_gap_ms: the longest time any writer went without an
//     acknowledgement, the wait after the last one included, i.e. how long writes were
//     unavailable).
//   chain_kv ... verify --log FILE
//     Reads every key of FILE from every serving member of its chain; each must hold the last
//     acknowledged value, or the value of a write that failed after it (a write whose answer was
//     lost may have applied); a key never acknowledged may also be absent. Prints {"keys" (keys
//     with an acknowledged write), "reads", "bad"}; exits 1 when anything is wrong.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cluster/chain_data.h"
#include "cluster/etcd.h"
#include "cluster/node.h"
#include "cluster/replica_service.h"
#include "replication/chain_client.h"

namespace cairn {
namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string etcd, cluster = "default", secret_file, mode, log, prefix = "t", until_file;
  int seconds = 10, threads = 2, keys = 200;
  bool unique_keys = false;
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
  std::optional<replication::PeerAddress> Address(uint32_t node) {
    std::lock_guard lock(mu_);
    auto it = table_.peers.find(node);
    if (it == table_.peers.end()) return std::nullopt;
    return it->second;
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

// The first chains hold the cluster's metadata (their state machine is not a key-value one): keys
// go to the others.
uint32_t ChainOf(const std::string& key, size_t chains) {
  const uint32_t metadata = cluster::MetadataChains(static_cast<uint32_t>(chains));
  if (chains <= metadata) return 0;
  return static_cast<uint32_t>(metadata + std::hash<std::string>{}(key) % (chains - metadata));
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
    auto more = [&] {
      if (Clock::now() >= end) return false;
      return args.until_file.empty() || !std::filesystem::exists(args.until_file);
    };
    std::vector<std::thread> writers;
    for (int t = 0; t < args.threads; ++t) {
      writers.emplace_back([&, t] {
        auto last_ack = Clock::now();
        for (uint64_t i = 0; more(); ++i) {
          const std::string key = args.prefix + std::to_string(t) +
                                  (args.unique_keys ? "-u" + std::to_string(i)
                                                    : "-k" + std::to_string(i % static_cast<uint64_t>(args.keys)));
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
        // The wait after the last acknowledgement counts too: a writer that never recovers shows.
        const int64_t tail = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - last_ack).count();
        std::lock_guard lock(log_mu);  // max_gap_ms is written under it, as in the loop
        if (tail > max_gap_ms) max_gap_ms = tail;
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
  std::set<std::string> acked_keys;
  std::string kind, key, value;
  while (log >> kind >> key >> value) {
    if (kind == "A") {
      allowed[key] = {ValueOf(key, value, args.value_size)};
      acked_keys.insert(key);
    } else {
      allowed[key].insert(ValueOf(key, value, args.value_size));  // a failed write may have applied
    }
  }
  // Four readers over the keys; each key is read from every member of its chain.
  std::vector<const std::pair<const std::string, std::set<std::string>>*> entries;
  for (const auto& entry : allowed) entries.push_back(&entry);
  std::atomic<uint64_t> reads{0}, bad{0};
  std::atomic<size_t> next{0};
  std::mutex err_mu;
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      for (size_t e = next++; e < entries.size(); e = next++) {
        const auto& [k, values] = *entries[e];
        const uint32_t chain = ChainOf(k, chains);
        auto view = table.View(chain);
        if (!view || view->members.empty()) {
          ++bad;
          std::lock_guard lock(err_mu);
          std::cerr << "chain " << chain << ": no members\n";
          continue;
        }
        const bool absent_ok = acked_keys.count(k) == 0;  // never acknowledged: may never have applied
        for (const replication::Member& m : view->members) {
          auto r = client.ReadFrom(chain, k, m.id.node);
          ++reads;
          if (!r.ok() || (!r->value && !absent_ok) || (r->value && values.count(*r->value) == 0)) {
            ++bad;
            std::lock_guard lock(err_mu);
            std::cerr << "key " << k << " on node " << m.id.node << ": "
                      << (r.ok() ? (r->value ? r->value->substr(0, 64) : std::string("<absent>"))
                                 : r.status().ToString())
                      << "\n";
          }
        }
      }
    });
  }
  for (auto& r : readers) r.join();
  std::cout << "{\"keys\": " << acked_keys.size() << ", \"reads\": " << reads << ", \"bad\": " << bad << "}"
            << std::endl;
  return bad == 0 ? 0 : 1;
}

}  // namespace
}  // namespace cairn

int main(int argc, char** argv) {
  cairn::Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : std::string(); };
    if (a == "--etcd")
      args.etcd = next();
    else if (a == "--cluster")
      args.cluster = next();
    else if (a == "--secret-file")
      args.secret_file = next();
    else if (a == "--log")
      args.log = next();
    else if (a == "--seconds")
      args.seconds = std::stoi(next());
    else if (a == "--threads")
      args.threads = std::stoi(next());
    else if (a == "--keys")
      args.keys = std::max(1, std::stoi(next()));
    else if (a == "--unique-keys")
      args.unique_keys = true;
    else if (a == "--prefix")
      args.prefix = next();
    else if (a == "--until-file")
      args.until_file = next();
    else if (a == "--value-size")
      args.value_size = std::stoul(next());
    else if (a == "write" || a == "verify")
      args.mode = a;
    else
      return cairn::Usage();
  }
  if (args.etcd.empty() || args.secret_file.empty() || args.mode.empty() || args.log.empty()) return cairn::Usage();
  return cairn::Run(args);
}
