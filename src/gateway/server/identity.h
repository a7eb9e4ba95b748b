// Users and their access keys: who a signed request comes from.
//
// The root user is the server's configured credential pair (never stored in the metadata
// store). Other users and their keys live in the metadata store (meta::UserRecord,
// meta::AccessKeyRecord) so they survive restarts; their secrets are sealed with the server's
// key (DATA/server.key, created at first start) and never stored, logged or returned in the
// clear after CreateKey returns them once.
//
// Every change goes to the metadata store first and then to an in-memory copy that request
// authentication reads, so a disabled or deleted key is refused from the next request on.
//
// Thread-safety: all methods are thread-safe; lookups take a shared lock, changes an exclusive
// one after their durable write.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "gateway/access.h"
#include "common/crypto.h"
#include "meta/meta_store.h"

namespace cairn::gateway::server {

struct NewAccessKey {
  std::string access_key;
  std::string secret_key;
  std::string user;
};

class Identities {
 public:
  // `root_canonical_id` is what S3 shows as the root user's Owner/ID.
  Identities(meta::MetaStore* meta, std::string root_access_key, std::string root_secret_key,
             std::string root_canonical_id, crypto::SealKey seal_key);

  // Reads every user and key from the metadata store. Error: Corruption when a sealed secret
  // does not open with the server key (the key file was replaced).
  [[nodiscard]] Status Load();

  // For SigV4: the secret of an enabled key.
  std::optional<std::string> Secret(std::string_view access_key) const;
  // Who holds an (enabled) access key. nullopt for unknown or disabled keys.
  std::optional<Principal> PrincipalOf(std::string_view access_key) const;
  // The canonical id of the user of that name; nullopt when there is none (root is not a stored
  // user).
  std::optional<std::string> CanonicalIdOf(std::string_view name) const;
  // True for the root's id and every user's.
  bool CanonicalIdExists(std::string_view canonical_id) const;
  // The user name of a canonical id ("root" for root), "" when unknown.
  std::string DisplayName(std::string_view canonical_id) const;
  const std::string& root_canonical_id() const { return root_id_; }

  // ---- Administration (admin API) ----
  // InvalidArgument for a bad name (IAM's rule: 1-64 of [A-Za-z0-9+=,.@_-]; "root" is taken);
  // AlreadyExists.
  Result<meta::UserRecord> CreateUser(std::string_view name);
  // Deletes the user and its keys. NotFound.
  Status DeleteUser(std::string_view name);
  std::vector<meta::UserRecord> ListUsers() const;
  // A fresh key pair for the user. NotFound when there is no such user.
  Result<NewAccessKey> CreateKey(std::string_view user);
  Status SetKeyEnabled(std::string_view access_key, bool enabled);
  Status DeleteKey(std::string_view access_key);
  // Keys without their secrets (sealed_secret cleared), ordered by id; of one user when `user`
  // is not empty.
  std::vector<meta::AccessKeyRecord> ListKeys(std::string_view user) const;

 private:
  struct Key {
    meta::AccessKeyRecord record;  // sealed_secret cleared
    std::string secret;
  };

  meta::MetaStore* const meta_;
  const std::string root_access_key_;
  const std::string root_secret_key_;
  const std::string root_id_;
  const crypto::SealKey seal_key_;

  // Held across each change's durable write and its map update, so that concurrent changes
  // reach the maps in the order they reached the store.
  std::mutex change_mu_;
  mutable std::shared_mutex mu_;
  std::map<std::string, meta::UserRecord, std::less<>> users_;  // by name
  std::map<std::string, std::string, std::less<>> names_by_id_;  // canonical id -> name
  std::map<std::string, Key, std::less<>> keys_;                 // by access key id
};

// Loads DATA/server.key (32 random bytes, hex, mode 0600), creating it at first start. A key
// file that exists but cannot be read is an error (never replaced), and so is a missing one when
// `sealed_secrets_exist` (the metadata store holds access keys sealed with it).
Result<crypto::SealKey> LoadOrCreateSealKey(const std::string& data_dir, bool sealed_secrets_exist);

}  // namespace cairn::gateway::server
