// The admin API: users and access keys of a running server, and its status, for `cairn admin`
// (server/cli_admin.cc).
//
// HTTP under /_cairn/admin/v1/ (no bucket name can start with '_', so the paths never collide with
// S3's), signed with SigV4 like any S3 request, and served to the root user only. Parameters go in
// the query string, so no request has a body; answers are JSON, errors too:
//
//   GET    /_cairn/admin/v1/users                     {"users": [{"name", "canonical_id", "created"}]}
//   POST   /_cairn/admin/v1/users?name=NAME           201 {"name", "canonical_id", "created"}
//   DELETE /_cairn/admin/v1/users/NAME                204 (refused while the user owns buckets)
//   POST   /_cairn/admin/v1/users/NAME/keys           201 {"access_key", "secret_key", "user", ...}
//   GET    /_cairn/admin/v1/keys[?user=NAME]          {"keys": [{"access_key", "user", "enabled", "created"}]}
//   POST   /_cairn/admin/v1/keys/KEY?enabled=false    200 the key (disable; =true enables)
//   DELETE /_cairn/admin/v1/keys/KEY                  204
//   GET    /_cairn/admin/v1/status                    {"mode": "single"|"cluster", "node", "manager",
//                                                      "nodes", "chains", ...}: cluster/node.h
//                                                      (StatusJson), server.cc for the single node
//   error: {"code": "NoSuchUser", "message": "..."} with 400, 403, 404 or 409
//
// A secret key appears in exactly one answer, the one that created it.
#include <nlohmann/json.hpp>

#include "common/logging.h"
#include "gateway/server/s3_service_internal.h"
#include "gateway/text.h"

namespace cairn::gateway::server {

using namespace internal;  // NOLINT(google-build-using-namespace)

namespace {

using Json = nlohmann::json;

Json UserJson(const meta::UserRecord& u) {
  return Json{{"name", u.name}, {"canonical_id", u.canonical_id}, {"created", FormatIso8601(u.created_ms)}};
}

Json KeyJson(const meta::AccessKeyRecord& k) {
  return Json{{"access_key", k.access_key},
              {"user", k.user},
              {"enabled", k.enabled},
              {"created", FormatIso8601(k.created_ms)}};
}

void SendJson(S3Service::Request& r, int status, const Json& body) {
  r.status = status;
  ResponseHead head = r.Head(status);
  head.Add("Content-Type", "application/json");
  // Secrets pass through here once; no cache may keep them.
  head.Add("Cache-Control", "no-store");
  // Keep non-ASCII user names readable and never throw on odd bytes.
  (void)r.ex.SendResponse(head, body.dump(2, ' ', false, Json::error_handler_t::replace) + "\n");
}

void SendJsonError(S3Service::Request& r, int status, std::string_view code, std::string_view message) {
  SendJson(r, status, Json{{"code", code}, {"message", message}});
}

// Splits "a/b/c" into its segments.
std::vector<std::string> Segments(std::string_view path) {
  std::vector<std::string> out;
  while (!path.empty()) {
    const size_t slash = path.find('/');
    out.emplace_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

}  // namespace

void S3Service::Admin(Request& r, std::string_view path) {
  if (r.auth.anonymous || !r.principal.root) {
    return SendJsonError(r, 403, "AccessDenied", "the admin API serves the root user only");
  }
  // A presigned URL could be replayed by whoever holds it (each replay of a key creation would
  // mint and reveal a new secret): admin requests must be signed in their headers.
  if (r.auth.method == AuthMethod::kPresigned) {
    return SendJsonError(r, 403, "AccessDenied", "the admin API does not accept presigned requests");
  }
  if (!r.ex.DrainBody(0)) return SendJsonError(r, 400, "InvalidRequest", "admin requests have no body");
  auto decoded = PercentDecode(path, false);
  if (!decoded.ok()) return SendJsonError(r, 400, "InvalidURI", decoded.status().message());
  const std::vector<std::string> seg = Segments(*decoded);
  const std::string_view method = r.ex.method();
  auto fail = [&](const Status& s) {
    if (s.IsNotFound()) return SendJsonError(r, 404, "NotFound", s.message());
    if (s.IsAlreadyExists()) return SendJsonError(r, 409, "AlreadyExists", s.message());
    if (s.IsInvalidArgument()) return SendJsonError(r, 400, "InvalidArgument", s.message());
    CAIRN_LOG_ERROR("admin {}: {}", r.request_id, s.ToString());
    return SendJsonError(r, 500, "InternalError", "the server met an internal error");
  };

  if (seg.size() == 1 && seg[0] == "status" && method == "GET" && options_.status) {
    auto doc = options_.status(r.Query("digests").value_or("") == "1");
    if (!doc.ok()) {
      CAIRN_LOG_WARN("admin {}: status: {}", r.request_id, doc.status().ToString());
      return SendJsonError(r, 503, "ServiceUnavailable", "cannot read the cluster's state: " + doc.status().ToString());
    }
    const Json status = Json::parse(*doc, nullptr, false);
    if (status.is_discarded()) return fail(Status::Internal("the status document is not JSON"));
    return SendJson(r, 200, status);
  }
  if (seg.size() == 1 && seg[0] == "users") {
    if (method == "GET") {
      Json users = Json::array();
      for (const auto& u : identities_->ListUsers()) users.push_back(UserJson(u));
      return SendJson(r, 200, Json{{"users", users}});
    }
    if (method == "POST") {
      auto user = identities_->CreateUser(r.Query("name").value_or(""));
      if (!user.ok()) return fail(user.status());
      return SendJson(r, 201, UserJson(*user));
    }
  } else if (seg.size() == 2 && seg[0] == "users" && method == "DELETE") {
    const std::string& name = seg[1];
    // A user's buckets would be left without an owner that can sign in; the operator decides
    // what happens to them first.
    if (auto id = identities_->CanonicalIdOf(name)) {
      auto buckets = meta_->ListBuckets();
      if (!buckets.ok()) return fail(buckets.status());
      for (const auto& b : *buckets) {
        if (b.owner == *id) {
          return SendJsonError(r, 409, "UserOwnsBuckets",
                               "user " + name + " still owns bucket " + b.name + "; delete its buckets first");
        }
      }
    }
    Status s = identities_->DeleteUser(name);
    if (!s.ok()) return fail(s);
    r.status = 204;
    (void)r.ex.SendResponse(r.Head(204), "");
    return;
  } else if (seg.size() == 3 && seg[0] == "users" && seg[2] == "keys" && method == "POST") {
    auto key = identities_->CreateKey(seg[1]);
    if (!key.ok()) return fail(key.status());
    return SendJson(r, 201, Json{{"access_key", key->access_key},
                                 {"secret_key", key->secret_key},
                                 {"user", key->user},
                                 {"enabled", true}});
  } else if (seg.size() == 1 && seg[0] == "keys" && method == "GET") {
    const std::string user = r.Query("user").value_or("");
    if (!user.empty() && !identities_->CanonicalIdOf(user)) return SendJsonError(r, 404, "NotFound", "user " + user);
    Json keys = Json::array();
    for (const auto& k : identities_->ListKeys(user)) keys.push_back(KeyJson(k));
    return SendJson(r, 200, Json{{"keys", keys}});
  } else if (seg.size() == 2 && seg[0] == "keys") {
    const std::string& access_key = seg[1];
    if (method == "DELETE") {
      Status s = identities_->DeleteKey(access_key);
      if (!s.ok()) return fail(s);
      r.status = 204;
      (void)r.ex.SendResponse(r.Head(204), "");
      return;
    }
    if (method == "POST") {
      const auto enabled = r.Query("enabled");
      if (enabled != "true" && enabled != "false") {
        return SendJsonError(r, 400, "InvalidArgument", "enabled must be true or false");
      }
      Status s = identities_->SetKeyEnabled(access_key, *enabled == "true");
      if (!s.ok()) return fail(s);
      for (const auto& k : identities_->ListKeys("")) {
        if (k.access_key == access_key) return SendJson(r, 200, KeyJson(k));
      }
      return SendJsonError(r, 404, "NotFound", "access key " + access_key);
    }
  }
  SendJsonError(r, 404, "NoSuchAdminResource", "no admin resource " + std::string(method) + " " + *decoded);
}

}  // namespace cairn::gateway::server
