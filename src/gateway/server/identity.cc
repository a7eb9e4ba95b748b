#include "gateway/server/identity.h"

#include <array>
#include <chrono>
#include <mutex>

#include "common/logging.h"
#include "gateway/server/files.h"

namespace cairn::gateway::server {
namespace {

constexpr std::string_view kUpperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
constexpr std::string_view kBase62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

// Uniform over the alphabet: bytes at or above the largest multiple of its size are redrawn.
std::string RandomText(std::string_view alphabet, size_t n) {
  std::string out;
  const size_t limit = 256 - 256 % alphabet.size();
  while (out.size() < n) {
    std::array<uint8_t, 64> bytes;
    crypto::RandomBytes(bytes);
    for (uint8_t b : bytes) {
      if (b >= limit || out.size() == n) continue;
      out.push_back(alphabet[b % alphabet.size()]);
    }
  }
  return out;
}

int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status ValidateUserName(std::string_view name) {
  if (name.empty() || name.size() > 64) return Status::InvalidArgument("a user name has 1 to 64 characters");
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view("+=,.@_-").find(c) != std::string_view::npos;
    if (!ok) return Status::InvalidArgument("a user name holds only letters, digits and +=,.@_-");
  }
  if (name == "root") return Status::AlreadyExists("user root is the server's own");
  return Status::OK();
}

// What a sealed secret is bound to: its key id and its user, so that a record edited to point at
// another key or user no longer opens.
std::string SealContext(const meta::AccessKeyRecord& k) { return k.access_key + '\0' + k.user; }

}  // namespace

Identities::Identities(meta::MetaStore* meta, std::string root_access_key, std::string root_secret_key,
                       std::string root_canonical_id, crypto::SealKey seal_key)
    : meta_(meta),
      root_access_key_(std::move(root_access_key)),
      root_secret_key_(std::move(root_secret_key)),
      root_id_(std::move(root_canonical_id)),
      seal_key_(seal_key) {}

Status Identities::Load() {
  CAIRN_ASSIGN_OR_RETURN(std::vector<meta::UserRecord> users, meta_->ListUsers());
  CAIRN_ASSIGN_OR_RETURN(std::vector<meta::AccessKeyRecord> keys, meta_->ListAccessKeys());
  std::unique_lock lock(mu_);
  users_.clear();
  names_by_id_.clear();
  keys_.clear();
  for (meta::UserRecord& u : users) {
    names_by_id_[u.canonical_id] = u.name;
    users_[u.name] = std::move(u);
  }
  for (meta::AccessKeyRecord& k : keys) {
    auto secret = crypto::Unseal(seal_key_, k.sealed_secret, SealContext(k));
    if (!secret) {
      return Status::Corruption("the secret of access key " + k.access_key +
                                " does not open with the server key (was server.key replaced?)");
    }
    k.sealed_secret.clear();
    std::string id = k.access_key;
    keys_[id] = Key{std::move(k), std::move(*secret)};
  }
  return Status::OK();
}

std::optional<std::string> Identities::Secret(std::string_view access_key) const {
  if (crypto::ConstantTimeEquals(access_key, root_access_key_)) return root_secret_key_;
  std::shared_lock lock(mu_);
  auto it = keys_.find(access_key);
  if (it == keys_.end() || !it->second.record.enabled) return std::nullopt;
  return it->second.secret;
}

std::optional<Principal> Identities::PrincipalOf(std::string_view access_key) const {
  if (crypto::ConstantTimeEquals(access_key, root_access_key_)) return Principal{false, true, "root", root_id_};
  std::shared_lock lock(mu_);
  auto it = keys_.find(access_key);
  if (it == keys_.end() || !it->second.record.enabled) return std::nullopt;
  auto user = users_.find(it->second.record.user);
  if (user == users_.end()) return std::nullopt;
  return Principal{false, false, user->second.name, user->second.canonical_id};
}

std::optional<std::string> Identities::CanonicalIdOf(std::string_view name) const {
  std::shared_lock lock(mu_);
  auto it = users_.find(name);
  if (it == users_.end()) return std::nullopt;
  return it->second.canonical_id;
}

bool Identities::CanonicalIdExists(std::string_view canonical_id) const {
  if (canonical_id == root_id_) return true;
  std::shared_lock lock(mu_);
  return names_by_id_.find(canonical_id) != names_by_id_.end();
}

std::string Identities::DisplayName(std::string_view canonical_id) const {
  if (canonical_id == root_id_) return "root";
  std::shared_lock lock(mu_);
  auto it = names_by_id_.find(canonical_id);
  return it == names_by_id_.end() ? std::string() : it->second;
}

Result<meta::UserRecord> Identities::CreateUser(std::string_view name) {
  CAIRN_RETURN_IF_ERROR(ValidateUserName(name));
  std::lock_guard change(change_mu_);
  meta::UserRecord user;
  user.name = std::string(name);
  // A fresh random id: a user deleted and created again under the same name does not inherit
  // the grants given to the old one.
  std::array<uint8_t, 32> id;
  crypto::RandomBytes(id);
  user.canonical_id = crypto::HexEncode(id);
  user.created_ms = NowMillis();
  CAIRN_RETURN_IF_ERROR(meta_->CreateUser(user));
  std::unique_lock lock(mu_);
  names_by_id_[user.canonical_id] = user.name;
  users_[user.name] = user;
  CAIRN_LOG_INFO("admin: user {} created (id {})", user.name, user.canonical_id);
  return user;
}

Status Identities::DeleteUser(std::string_view name) {
  std::lock_guard change(change_mu_);
  CAIRN_ASSIGN_OR_RETURN(std::vector<meta::AccessKeyRecord> removed, meta_->DeleteUser(name));
  std::unique_lock lock(mu_);
  for (const meta::AccessKeyRecord& k : removed) keys_.erase(k.access_key);
  auto it = users_.find(name);
  if (it != users_.end()) {
    names_by_id_.erase(it->second.canonical_id);
    users_.erase(it);
  }
  CAIRN_LOG_INFO("admin: user {} deleted with {} keys", name, removed.size());
  return Status::OK();
}

std::vector<meta::UserRecord> Identities::ListUsers() const {
  std::shared_lock lock(mu_);
  std::vector<meta::UserRecord> out;
  for (const auto& [name, user] : users_) out.push_back(user);
  return out;
}

Result<NewAccessKey> Identities::CreateKey(std::string_view user) {
  std::lock_guard change(change_mu_);
  meta::AccessKeyRecord record;
  record.user = std::string(user);
  record.enabled = true;
  record.created_ms = NowMillis();
  const std::string secret = RandomText(kBase62, 40);
  // 20 characters like AWS's ids; the "CK" prefix tells Cairn user keys from root keys ("CAIRN").
  for (int attempt = 0;; ++attempt) {
    record.access_key = "CK" + RandomText(kUpperAlnum, 18);
    record.sealed_secret = crypto::Seal(seal_key_, secret, SealContext(record));
    Status s = meta_->CreateAccessKey(record);
    if (s.ok()) break;
    if (!s.IsAlreadyExists() || attempt == 3) return s;
  }
  std::unique_lock lock(mu_);
  meta::AccessKeyRecord cached = record;
  cached.sealed_secret.clear();
  keys_[record.access_key] = Key{std::move(cached), secret};
  CAIRN_LOG_INFO("admin: access key {} created for user {}", record.access_key, record.user);
  return NewAccessKey{record.access_key, secret, record.user};
}

Status Identities::SetKeyEnabled(std::string_view access_key, bool enabled) {
  std::lock_guard change(change_mu_);
  CAIRN_RETURN_IF_ERROR(meta_->SetAccessKeyEnabled(access_key, enabled));
  std::unique_lock lock(mu_);
  auto it = keys_.find(access_key);
  if (it != keys_.end()) it->second.record.enabled = enabled;
  CAIRN_LOG_INFO("admin: access key {} {}", access_key, enabled ? "enabled" : "disabled");
  return Status::OK();
}

Status Identities::DeleteKey(std::string_view access_key) {
  std::lock_guard change(change_mu_);
  CAIRN_RETURN_IF_ERROR(meta_->DeleteAccessKey(access_key));
  std::unique_lock lock(mu_);
  auto it = keys_.find(access_key);
  if (it != keys_.end()) keys_.erase(it);
  CAIRN_LOG_INFO("admin: access key {} deleted", access_key);
  return Status::OK();
}

std::vector<meta::AccessKeyRecord> Identities::ListKeys(std::string_view user) const {
  std::shared_lock lock(mu_);
  std::vector<meta::AccessKeyRecord> out;
  for (const auto& [id, key] : keys_) {
    if (user.empty() || key.record.user == user) out.push_back(key.record);
  }
  return out;
}

Result<crypto::SealKey> LoadOrCreateSealKey(const std::string& data_dir, bool sealed_secrets_exist) {
  const std::string path = data_dir + "/server.key";
  crypto::SealKey key;
  auto contents = ReadSmallFile(path);
  if (contents.ok()) {
    std::string_view hex = *contents;
    while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r')) hex.remove_suffix(1);
    if (!crypto::HexDecode(hex, key)) return Status::ConfigError(path + " does not hold 64 hex digits");
    return key;
  }
  // Only a file that is not there is created; one that cannot be read (permissions, I/O) is an
  // error, never replaced: replacing it would lose every user's secret for good.
  if (!contents.status().IsNotFound()) return contents.status();
  if (sealed_secrets_exist) {
    return Status::ConfigError(path + " is missing but the metadata store holds sealed access keys: restore it");
  }
  crypto::RandomBytes(key);
  CAIRN_RETURN_IF_ERROR(CreateFileDurably(path, crypto::HexEncode(key) + "\n", 0600));
  return key;
}

}  // namespace cairn::gateway::server
