// `cairn admin ...`: users and access keys of a running server, and its status, through its
// admin API (gateway/server/admin_api.cc), signed with the root credentials.
//
//   cairn admin user create NAME | user list | user delete NAME
//   cairn admin key create USER | key list [USER] | key delete KEY | key disable KEY | key enable KEY
//   cairn admin status: mode, this node, the manager, the nodes, the chain table, and the chains
//                       that are short (fewer members than replicas), degraded (a member whose
//                       node is gone) or lost (no serving member)
//
// The endpoint and root credentials come from --endpoint, --access-key and --secret-key, or from
// CAIRN_ENDPOINT, CAIRN_ROOT_ACCESS_KEY and CAIRN_ROOT_SECRET_KEY, or from AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY (what `. DATA/credentials` sets); the default endpoint is
// http://127.0.0.1:9000. --json prints the server's JSON answer; otherwise a short table.
//
// Thread-safety: see cli.h.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/s3_client.h"
#include "gateway/sigv4.h"
#include "server/cli.h"

namespace cairn::cli {
namespace {

struct AdminFlags {
  std::string endpoint;
  std::string access_key;
  std::string secret_key;
  std::string region = "us-east-1";
  bool json = false;
  bool digests = false;  // status: ask for the replicas' digests
  std::string name;  // the user or key the subcommand names
};

std::string FromEnv(const std::string& flag, const char* env, const char* fallback = "") {
  if (!flag.empty()) return flag;
  const char* v = std::getenv(env);
  return v != nullptr && *v != '\0' ? v : fallback;
}

std::string Escape(std::string_view s) { return gateway::UriEncode(s, /*keep_slash=*/false); }

// Sends one admin request; prints the answer (or the error) and returns the exit code.
int Call(const AdminFlags& f, const std::string& method, const std::string& path, const std::string& query,
         const std::function<void(const nlohmann::json&)>& print) {
  const std::string endpoint = FromEnv(f.endpoint, "CAIRN_ENDPOINT", "http://127.0.0.1:9000");
  bench::ClientOptions options;
  options.credentials.access_key = FromEnv(f.access_key, "CAIRN_ROOT_ACCESS_KEY");
  options.credentials.secret_key = FromEnv(f.secret_key, "CAIRN_ROOT_SECRET_KEY");
  if (options.credentials.access_key.empty() && options.credentials.secret_key.empty()) {
    // DATA/credentials, sourced into a shell, sets the AWS_* names (for aws-cli too).
    options.credentials.access_key = FromEnv("", "AWS_ACCESS_KEY_ID");
    options.credentials.secret_key = FromEnv("", "AWS_SECRET_ACCESS_KEY");
  }
  options.region = f.region;
  options.user_agent = "cairn-admin";
  if (options.credentials.access_key.empty() || options.credentials.secret_key.empty()) {
    std::cerr << "cairn admin: root credentials needed: --access-key/--secret-key, CAIRN_ROOT_ACCESS_KEY/"
                 "CAIRN_ROOT_SECRET_KEY, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (set -a; . DATA/credentials)\n";
    return 1;
  }
  auto ep = bench::ParseEndpoint(endpoint);
  if (!ep.ok()) {
    std::cerr << "cairn admin: " << ep.status() << "\n";
    return 1;
  }
  bench::S3Client client(options);
  if (Status s = client.Connect(ep->host, ep->port); !s.ok()) {
    std::cerr << "cairn admin: cannot reach " << endpoint << ": " << s << "\n";
    return 1;
  }
  bench::Request req;
  req.method = method;
  req.path = "/_cairn/admin/v1/" + path;
  req.query = query;
  auto resp = client.Send(req);
  if (!resp.ok()) {
    std::cerr << "cairn admin: " << resp.status() << "\n";
    return 1;
  }
  nlohmann::json body;
  if (!resp->body.empty()) body = nlohmann::json::parse(resp->body, nullptr, false);
  if (resp->status >= 300) {
    std::string code = "HTTP " + std::to_string(resp->status);
    std::string message = resp->body;
    if (body.is_object() && body.contains("code")) {
      code = body.value("code", code);
      message = body.value("message", "");
    } else if (!resp->ErrorCode().empty()) {  // an S3 error (bad signature, wrong key)
      code = resp->ErrorCode();
      message = resp->ErrorMessage();
    }
    std::cerr << "cairn admin: " << code << ": " << message << "\n";
    return 1;
  }
  if (f.json) {
    std::cout << (body.is_discarded() || body.is_null() ? nlohmann::json::object() : body).dump(2) << "\n";
  } else if (!body.is_discarded() && !body.is_null()) {
    print(body);
  }
  return 0;
}

void PrintUser(const nlohmann::json& u) {
  std::cout << u.value("name", "") << "  " << u.value("canonical_id", "") << "  " << u.value("created", "") << "\n";
}

void PrintKey(const nlohmann::json& k) {
  std::cout << k.value("access_key", "") << "  " << k.value("user", "") << "  "
            << (k.value("enabled", false) ? "enabled" : "disabled") << "  " << k.value("created", "") << "\n";
}

// Prints rows as columns separated by two spaces, each as wide as its widest cell.
void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line = "  ";
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

std::string Text(const nlohmann::json& j, const char* key, const std::string& absent = "-") {
  return j.contains(key) && j[key].is_string() && !j[key].get<std::string>().empty() ? j[key].get<std::string>()
                                                                                     : absent;
}

// The status document (cluster/node.h, StatusJson) for people.
void PrintStatus(const nlohmann::json& j) {
  using Json = nlohmann::json;
  const bool cluster = j.value("mode", "") == "cluster";
  std::cout << "mode:      " << j.value("mode", "?");
  if (cluster) std::cout << " (cluster " << Text(j, "cluster") << ", etcd revision " << j.value("revision", 0) << ")";
  std::cout << "\nthis node: " << Text(j, "node")
            << (j.value("fenced", false) ? " (FENCED: may not acknowledge writes)" : "")
            << "\nmanager:   " << Text(j, "manager", cluster ? "none (the office is empty)" : "none (single node)")
            << "\n";

  // Each registered target with its node's lease: a member placed under another lease names a
  // previous run of its node.
  std::map<std::string, int64_t> live_targets;
  const Json nodes = j.value("nodes", Json::array());
  std::cout << "\nnodes (" << nodes.size() << "):\n";
  std::vector<std::vector<std::string>> rows = {{"ID", "ZONE", "S3", "RPC", "TARGETS", "LEASE"}};
  for (const Json& n : nodes) {
    std::string targets;
    const int64_t lease = n.value("lease", int64_t{0});
    for (const Json& t : n.value("targets", Json::array())) {
      if (!t.is_string()) continue;
      live_targets[t.get<std::string>()] = lease;
      targets += (targets.empty() ? "" : ",") + t.get<std::string>();
    }
    rows.push_back({Text(n, "id"), Text(n, "zone"), Text(n, "s3"), Text(n, "rpc"), targets.empty() ? "-" : targets,
                    lease == 0 ? "-" : std::to_string(lease)});
  }
  PrintTable(rows);

  const Json chains = j.value("chains", Json::array());
  const uint64_t replicas = j.value("replicas", uint64_t{0});
  if (!cluster) {
    std::cout << "\nchains: none (a single node stores everything itself)\n";
    return;
  }
  std::cout << "\nchains (" << chains.size() << ", " << replicas << " replicas each as this node is configured):\n";
  rows = {{"ID", "VERSION", "MEMBERS (head first)"}};
  std::vector<std::string> problems;
  size_t syncing = 0;
  for (const Json& c : chains) {
    const std::string id = std::to_string(c.value("id", 0));
    std::string members;
    size_t count = 0, serving = 0;
    for (const Json& m : c.value("members", Json::array())) {
      const std::string target = Text(m, "target");
      const std::string state = Text(m, "state");
      const auto it = live_targets.find(target);
      const int64_t incarnation = m.value("incarnation", int64_t{0});
      const bool live = it != live_targets.end() && (incarnation == 0 || incarnation == it->second);
      members += (members.empty() ? "" : "  ") + target + " " + state + (live ? "" : " (node gone)");
      ++count;
      if (state == "serving") ++serving;
      if (state == "syncing") ++syncing;
      if (!live) {
        problems.push_back(
            "chain " + id + ": degraded: member " + target +
            (it == live_targets.end() ? " belongs to no registered node" : " names a previous run of its node"));
      }
    }
    if (serving == 0) {
      problems.push_back("chain " + id + ": LOST: no serving member holds its data");
    } else if (count < replicas) {
      problems.push_back("chain " + id + ": short: " + std::to_string(count) + " of " + std::to_string(replicas) +
                         " members");
    }
    rows.push_back({id, std::to_string(c.value("version", uint64_t{0})), members.empty() ? "-" : members});
  }
  PrintTable(rows);
  std::cout << "\n";
  if (chains.empty()) {
    std::cout << "no chain table yet (the manager writes it once `replicas` nodes have registered, or 10 s after "
                 "the first one)\n";
  } else if (problems.empty()) {
    std::cout << "every chain has " << replicas << " members, all on registered nodes\n";
  } else {
    std::cout << problems.size() << " problems:\n";
    for (const std::string& p : problems) std::cout << "  " << p << "\n";
  }
  if (syncing > 0) {
    std::cout << syncing << " members syncing: each serves once it has copied its chain from its predecessor\n";
  }
  const Json resync = j.value("resync", Json::array());
  for (const Json& r : resync) {
    std::cout << "resync: chain " << r.value("chain", 0) << ", " << Text(r, "target") << ": copy " << Text(r, "copy")
              << " (version " << r.value("version", uint64_t{0}) << ")\n";
  }
  for (const Json& r : j.value("peer_reports", Json::array())) {
    std::cout << "peer report: " << Text(r, "reporter") << " cannot get updates through to " << Text(r, "target")
              << "\n";
  }
  for (const Json& e : j.value("evictions", Json::array())) {
    std::cout << "eviction: " << Text(e, "node") << " (lease " << e.value("lease", int64_t{0})
              << ") evicted by the manager on its peers' reports; no new chain until "
              << e.value("until_ms", uint64_t{0}) << " ms since the epoch\n";
  }
  for (const Json& n : j.value("nodes", Json::array())) {
    if (n.contains("quarantined_until_ms")) {
      std::cout << "quarantined: " << Text(n, "id") << " was evicted and gets no new chain until "
                << n.value("quarantined_until_ms", uint64_t{0}) << " ms since the epoch\n";
    }
  }
  const Json local = j.value("local_replicas", Json::array());
  if (!local.empty()) {
    std::cout << "\nthis node's replicas:\n";
    rows = {{"CHAIN", "VERSION", "PHASE", "APPLIED", "COMMITTED", "RECORDS", "DIGEST"}};
    for (const Json& r : local) {
      rows.push_back({std::to_string(r.value("chain", 0)), std::to_string(r.value("version", uint64_t{0})),
                      Text(r, "phase") + (r.value("fenced", false) ? " (fenced)" : ""),
                      std::to_string(r.value("last_applied", uint64_t{0})),
                      std::to_string(r.value("committed", uint64_t{0})), std::to_string(r.value("records", uint64_t{0})),
                      Text(r, "digest").substr(0, 16)});
    }
    PrintTable(rows);
    for (const Json& r : local) {
      if (!r.contains("copy") || !r["copy"].is_object()) continue;
      const Json& c = r["copy"];
      const uint64_t bytes = c.value("bytes", uint64_t{0}), done = c.value("bytes_done", uint64_t{0});
      std::cout << "chain " << r.value("chain", 0) << ": blob copy " << (c.value("finished", false) ? "ended" : "running")
                << ", " << c.value("blobs_done", uint64_t{0}) << " of " << c.value("blobs", uint64_t{0}) << " blobs, "
                << done / (1024 * 1024) << " of " << bytes / (1024 * 1024) << " MiB ("
                << (bytes == 0 ? 100 : done * 100 / bytes) << "%)\n";
    }
  }
}

}  // namespace

void AddAdminCommand(CLI::App& root, CommandAction& action) {
  auto f = std::make_shared<AdminFlags>();
  CLI::App* admin = root.add_subcommand("admin", "Manage users and access keys of a running server; its status");
  admin->require_subcommand(1);
  admin->add_option("--endpoint", f->endpoint, "Server URL (default $CAIRN_ENDPOINT or http://127.0.0.1:9000)");
  admin->add_option("--access-key", f->access_key, "Root access key (default $CAIRN_ROOT_ACCESS_KEY, else $AWS_ACCESS_KEY_ID)");
  admin->add_option("--secret-key", f->secret_key, "Root secret key (default $CAIRN_ROOT_SECRET_KEY, else $AWS_SECRET_ACCESS_KEY)");
  admin->add_option("--region", f->region, "Region the server signs for")->capture_default_str();
  admin->add_flag("--json", f->json, "Print the server's JSON answer");

  // Options of the admin command are accepted after the subcommands too ("key create bob --json").
  auto common = [f](CLI::App* cmd) {
    cmd->add_flag("--json", f->json, "Print the server's JSON answer");
    cmd->add_option("--endpoint", f->endpoint, "Server URL");
    cmd->add_option("--access-key", f->access_key, "Root access key");
    cmd->add_option("--secret-key", f->secret_key, "Root secret key");
    cmd->add_option("--region", f->region, "Region the server signs for");
  };

  CLI::App* user = admin->add_subcommand("user", "Users")->require_subcommand(1);
  CLI::App* user_create = user->add_subcommand("create", "Create a user");
  user_create->add_option("name", f->name, "User name")->required();
  common(user_create);
  user_create->callback([&action, f] {
    action = [f] { return Call(*f, "POST", "users", "name=" + Escape(f->name), PrintUser); };
  });
  CLI::App* user_list = user->add_subcommand("list", "List users");
  common(user_list);
  user_list->callback([&action, f] {
    action = [f] {
      return Call(*f, "GET", "users", "", [](const nlohmann::json& j) {
        for (const auto& u : j.value("users", nlohmann::json::array())) PrintUser(u);
      });
    };
  });
  CLI::App* user_delete = user->add_subcommand("delete", "Delete a user and its keys");
  user_delete->add_option("name", f->name, "User name")->required();
  common(user_delete);
  user_delete->callback([&action, f] {
    action = [f] { return Call(*f, "DELETE", "users/" + Escape(f->name), "", [](const nlohmann::json&) {}); };
  });

  CLI::App* status = admin->add_subcommand("status", "The cluster's state: nodes, the manager, the chain table");
  common(status);
  status->add_flag("--digests", f->digests,
                   "Also a digest of each of this node's replicas (hashes all their data: for comparing replicas)");
  status->callback([&action, f] {
    action = [f] { return Call(*f, "GET", "status", f->digests ? "digests=1" : "", PrintStatus); };
  });

  CLI::App* key = admin->add_subcommand("key", "Access keys")->require_subcommand(1);
  CLI::App* key_create = key->add_subcommand("create", "Create an access key for a user (the secret is shown once)");
  key_create->add_option("user", f->name, "User name")->required();
  common(key_create);
  key_create->callback([&action, f] {
    action = [f] {
      return Call(*f, "POST", "users/" + Escape(f->name) + "/keys", "", [](const nlohmann::json& k) {
        std::cout << "access key: " << k.value("access_key", "") << "\nsecret key: " << k.value("secret_key", "")
                  << "\n(the secret is shown only now)\n";
      });
    };
  });
  CLI::App* key_list = key->add_subcommand("list", "List access keys (of one user when given)");
  key_list->add_option("user", f->name, "User name");
  common(key_list);
  key_list->callback([&action, f] {
    action = [f] {
      return Call(*f, "GET", "keys", f->name.empty() ? "" : "user=" + Escape(f->name), [](const nlohmann::json& j) {
        for (const auto& k : j.value("keys", nlohmann::json::array())) PrintKey(k);
      });
    };
  });
  for (const auto& [verb, method, query, help] :
       {std::tuple<const char*, const char*, const char*, const char*>{"delete", "DELETE", "", "Delete an access key"},
        {"disable", "POST", "enabled=false", "Disable an access key (requests with it are refused)"},
        {"enable", "POST", "enabled=true", "Enable a disabled access key"}}) {
    CLI::App* cmd = key->add_subcommand(verb, help);
    cmd->add_option("access_key", f->name, "Access key id")->required();
    common(cmd);
    const std::string m = method;
    const std::string q = query;
    cmd->callback([&action, f, m, q] {
      action = [f, m, q] { return Call(*f, m, "keys/" + Escape(f->name), q, PrintKey); };
    });
  }
}

}  // namespace cairn::cli
