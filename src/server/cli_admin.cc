// `cairn admin ...`: users and access keys of a running server, through its admin API
// (gateway/server/admin_api.cc), signed with the root credentials.
//
//   cairn admin user create NAME | user list | user delete NAME
//   cairn admin key create USER | key list [USER] | key delete KEY | key disable KEY | key enable KEY
//
// The endpoint and root credentials come from --endpoint, --access-key and --secret-key, or from
// CAIRN_ENDPOINT, CAIRN_ROOT_ACCESS_KEY and CAIRN_ROOT_SECRET_KEY, or from AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY (what `. DATA/credentials` sets); the default endpoint is
// http://127.0.0.1:9000. --json prints the server's JSON answer; otherwise a short table.
//
// Thread-safety: see cli.h.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

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

}  // namespace

void AddAdminCommand(CLI::App& root, CommandAction& action) {
  auto f = std::make_shared<AdminFlags>();
  CLI::App* admin = root.add_subcommand("admin", "Manage users and access keys of a running server");
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
