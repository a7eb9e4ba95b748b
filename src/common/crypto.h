// Hashes, MACs, sealing and text encodings, on top of OpenSSL 3 libcrypto (EVP): what the S3
// gateway needs (SigV4, ETags, sealed secrets) and the cluster's RPC authentication.
//
// SHA-256 and HMAC-SHA256 drive SigV4 request signing; MD5 computes ETags and checks Content-MD5;
// hex and base64 are their textual forms on the wire. The functions are pure and return values;
// failure inside libcrypto for these fixed algorithms can only mean it could not allocate, which
// is treated like a failed `new` (the process aborts). Decoders take untrusted text and report
// malformed input with std::nullopt, never reading outside the given view.
//
// Thread-safety: all free functions are safe to call concurrently. A Sha256Hasher or Md5Hasher
// object is used by one thread at a time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace cairn::crypto {

inline constexpr size_t kSha256Size = 32;
inline constexpr size_t kMd5Size = 16;
using Sha256Digest = std::array<uint8_t, kSha256Size>;
using Md5Digest = std::array<uint8_t, kMd5Size>;

// Views text as bytes, for the hashing functions below.
inline std::span<const std::byte> AsBytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

Sha256Digest Sha256(std::span<const std::byte> data);
inline Sha256Digest Sha256(std::string_view data) { return Sha256(AsBytes(data)); }
Md5Digest Md5(std::span<const std::byte> data);
inline Md5Digest Md5(std::string_view data) { return Md5(AsBytes(data)); }
Sha256Digest HmacSha256(std::span<const uint8_t> key, std::string_view data);
inline Sha256Digest HmacSha256(std::string_view key, std::string_view data) {
  return HmacSha256(std::span(reinterpret_cast<const uint8_t*>(key.data()), key.size()), data);
}

// Lowercase hex, two characters per byte.
std::string HexEncode(std::span<const uint8_t> bytes);
// Decodes exactly out.size() bytes from 2 * out.size() hex digits (either case). Returns false,
// leaving `out` unspecified, when the length is wrong or a character is not a hex digit.
bool HexDecode(std::string_view hex, std::span<uint8_t> out);

// Standard base64 (RFC 4648 section 4) with '=' padding.
std::string Base64Encode(std::span<const uint8_t> bytes);
// Strict: the length is a multiple of 4, only alphabet characters, at most two '=' at the end.
std::optional<std::string> Base64Decode(std::string_view text);

// Compares in time that depends only on the lengths, which are not secret (signatures are
// always 64 hex characters).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// Cryptographically strong random bytes (OpenSSL's RAND_bytes).
void RandomBytes(std::span<uint8_t> out);

// Authenticated encryption of small secrets at rest (access keys' secrets): AES-256-GCM with a
// random 96-bit nonce. The sealed form is nonce (12) || ciphertext || tag (16). `associated` is
// bound into the tag (the access key id, so a sealed secret cannot be moved to another key).
inline constexpr size_t kSealKeySize = 32;
using SealKey = std::array<uint8_t, kSealKeySize>;
std::string Seal(const SealKey& key, std::string_view plaintext, std::string_view associated);
// nullopt when `sealed` was not made by Seal with this key and associated data (wrong key,
// tampered bytes, truncated).
std::optional<std::string> Unseal(const SealKey& key, std::string_view sealed, std::string_view associated);

// Incremental digests for bodies that arrive in pieces.
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;
  Sha256Hasher(Sha256Hasher&& other) noexcept;
  Sha256Hasher& operator=(Sha256Hasher&& other) noexcept;

  void Update(std::span<const std::byte> data);
  // Returns the digest of everything fed since construction or the last Finish, and starts over.
  Sha256Digest Finish();

 private:
  evp_md_ctx_st* ctx_;  // owned; null only in a moved-from object, which may only be destroyed or assigned
};

class Md5Hasher {
 public:
  Md5Hasher();
  ~Md5Hasher();
  Md5Hasher(const Md5Hasher&) = delete;
  Md5Hasher& operator=(const Md5Hasher&) = delete;
  Md5Hasher(Md5Hasher&& other) noexcept;
  Md5Hasher& operator=(Md5Hasher&& other) noexcept;

  void Update(std::span<const std::byte> data);
  // Returns the digest of everything fed since construction or the last Finish, and starts over.
  Md5Digest Finish();

 private:
  evp_md_ctx_st* ctx_;  // owned; null only in a moved-from object, which may only be destroyed or assigned
};

}  // namespace cairn::crypto
