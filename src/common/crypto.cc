#include "common/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <memory>

#include <cstdio>
#include <cstdlib>
#include <utility>


namespace cairn::crypto {
namespace {

int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// libcrypto fails on these fixed, always-available algorithms only when it cannot allocate.
[[noreturn]] void CryptoFailure(const char* what) {
  std::fprintf(stderr, "cairn: libcrypto failed in %s (out of memory?)\n", what);
  std::abort();
}

void Check(int rc, const char* what) {
  if (rc != 1) CryptoFailure(what);
}

EVP_MD_CTX* NewDigestCtx(const EVP_MD* md) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) CryptoFailure("EVP_MD_CTX_new");
  Check(EVP_DigestInit_ex(ctx, md, nullptr), "EVP_DigestInit_ex");
  return ctx;
}

template <size_t N>
std::array<uint8_t, N> OneShotDigest(const EVP_MD* md, std::span<const std::byte> data) {
  std::array<uint8_t, N> out{};
  unsigned int len = 0;
  Check(EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr), "EVP_Digest");
  if (len != N) CryptoFailure("EVP_Digest length");
  return out;
}

template <size_t N>
std::array<uint8_t, N> FinishAndReset(EVP_MD_CTX* ctx) {
  std::array<uint8_t, N> out{};
  unsigned int len = 0;
  Check(EVP_DigestFinal_ex(ctx, out.data(), &len), "EVP_DigestFinal_ex");
  if (len != N) CryptoFailure("EVP_DigestFinal_ex length");
  Check(EVP_DigestInit_ex(ctx, nullptr, nullptr), "EVP_DigestInit_ex");
  return out;
}

// The HMAC implementation, fetched once per process (the fetch is the costly part).
EVP_MAC* HmacAlgorithm() {
  static EVP_MAC* const mac = [] {
    EVP_MAC* m = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
    if (m == nullptr) CryptoFailure("EVP_MAC_fetch(HMAC)");
    return m;
  }();
  return mac;
}

bool IsBase64Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

}  // namespace

Sha256Digest Sha256(std::span<const std::byte> data) { return OneShotDigest<kSha256Size>(EVP_sha256(), data); }

Md5Digest Md5(std::span<const std::byte> data) { return OneShotDigest<kMd5Size>(EVP_md5(), data); }

Sha256Digest HmacSha256(std::span<const uint8_t> key, std::string_view data) {
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(HmacAlgorithm());
  if (ctx == nullptr) CryptoFailure("EVP_MAC_CTX_new");
  char digest_name[] = "SHA256";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
      OSSL_PARAM_construct_end(),
  };
  Sha256Digest out{};
  size_t len = 0;
  // An empty key is legal for HMAC; pass a valid pointer all the same.
  static const uint8_t kNoKey = 0;
  const uint8_t* key_ptr = key.empty() ? &kNoKey : key.data();
  const bool ok = EVP_MAC_init(ctx, key_ptr, key.size(), params) == 1 &&
                  EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1 &&
                  EVP_MAC_final(ctx, out.data(), &len, out.size()) == 1 && len == out.size();
  EVP_MAC_CTX_free(ctx);
  if (!ok) CryptoFailure("HMAC-SHA256");
  return out;
}

std::string HexEncode(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0x0f];
  }
  return out;
}

bool HexDecode(std::string_view hex, std::span<uint8_t> out) {
  if (hex.size() != out.size() * 2) return false;
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = HexDigitValue(hex[2 * i]);
    const int lo = HexDigitValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>((hi << 4) | lo);
  }
  return true;
}

std::string Base64Encode(std::span<const uint8_t> bytes) {
  // EVP_EncodeBlock writes 4 characters per 3 bytes (rounded up) plus a NUL.
  std::string out((bytes.size() + 2) / 3 * 4 + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  if (text.empty()) return std::string();
  size_t padding = 0;
  if (text.back() == '=') ++padding;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++padding;
  for (size_t i = 0; i < text.size() - padding; ++i) {
    if (!IsBase64Char(text[i])) return std::nullopt;
  }
  // EVP_DecodeBlock also skips whitespace and accepts other oddities; the checks above leave it
  // only canonical input. Its output counts the padding as zero bytes, which are trimmed here.
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0 || static_cast<size_t>(n) != out.size()) return std::nullopt;
  out.resize(out.size() - padding);
  return out;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Sha256Hasher::Sha256Hasher() : ctx_(NewDigestCtx(EVP_sha256())) {}
Sha256Hasher::~Sha256Hasher() { EVP_MD_CTX_free(ctx_); }
Sha256Hasher::Sha256Hasher(Sha256Hasher&& other) noexcept : ctx_(std::exchange(other.ctx_, nullptr)) {}
Sha256Hasher& Sha256Hasher::operator=(Sha256Hasher&& other) noexcept {
  std::swap(ctx_, other.ctx_);
  return *this;
}
void Sha256Hasher::Update(std::span<const std::byte> data) {
  Check(EVP_DigestUpdate(ctx_, data.data(), data.size()), "EVP_DigestUpdate");
}
Sha256Digest Sha256Hasher::Finish() { return FinishAndReset<kSha256Size>(ctx_); }

Md5Hasher::Md5Hasher() : ctx_(NewDigestCtx(EVP_md5())) {}
Md5Hasher::~Md5Hasher() { EVP_MD_CTX_free(ctx_); }
Md5Hasher::Md5Hasher(Md5Hasher&& other) noexcept : ctx_(std::exchange(other.ctx_, nullptr)) {}
Md5Hasher& Md5Hasher::operator=(Md5Hasher&& other) noexcept {
  std::swap(ctx_, other.ctx_);
  return *this;
}
void Md5Hasher::Update(std::span<const std::byte> data) {
  Check(EVP_DigestUpdate(ctx_, data.data(), data.size()), "EVP_DigestUpdate");
}
Md5Digest Md5Hasher::Finish() { return FinishAndReset<kMd5Size>(ctx_); }

// ---- Random bytes and sealing ---------------------------------------------------------------

void RandomBytes(std::span<uint8_t> out) {
  Check(RAND_bytes(out.data(), static_cast<int>(out.size())), "RAND_bytes");
}

namespace {

constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

CipherCtx NewCipherCtx() {
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) CryptoFailure("EVP_CIPHER_CTX_new");
  return ctx;
}

}  // namespace

std::string Seal(const SealKey& key, std::string_view plaintext, std::string_view associated) {
  std::string out(kNonceSize + plaintext.size() + kTagSize, '\0');
  auto* bytes = reinterpret_cast<uint8_t*>(out.data());
  RandomBytes(std::span(bytes, kNonceSize));
  CipherCtx ctx = NewCipherCtx();
  Check(EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), bytes), "EVP_EncryptInit_ex");
  int n = 0;
  if (!associated.empty()) {
    Check(EVP_EncryptUpdate(ctx.get(), nullptr, &n, reinterpret_cast<const uint8_t*>(associated.data()),
                            static_cast<int>(associated.size())),
          "EVP_EncryptUpdate(aad)");
  }
  Check(EVP_EncryptUpdate(ctx.get(), bytes + kNonceSize, &n, reinterpret_cast<const uint8_t*>(plaintext.data()),
                          static_cast<int>(plaintext.size())),
        "EVP_EncryptUpdate");
  int tail = 0;
  Check(EVP_EncryptFinal_ex(ctx.get(), bytes + kNonceSize + n, &tail), "EVP_EncryptFinal_ex");
  Check(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize, bytes + kNonceSize + plaintext.size()),
        "EVP_CTRL_GCM_GET_TAG");
  return out;
}

std::optional<std::string> Unseal(const SealKey& key, std::string_view sealed, std::string_view associated) {
  if (sealed.size() < kNonceSize + kTagSize) return std::nullopt;
  const auto* bytes = reinterpret_cast<const uint8_t*>(sealed.data());
  const size_t length = sealed.size() - kNonceSize - kTagSize;
  std::string out(length, '\0');
  CipherCtx ctx = NewCipherCtx();
  Check(EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), bytes), "EVP_DecryptInit_ex");
  int n = 0;
  if (!associated.empty()) {
    Check(EVP_DecryptUpdate(ctx.get(), nullptr, &n, reinterpret_cast<const uint8_t*>(associated.data()),
                            static_cast<int>(associated.size())),
          "EVP_DecryptUpdate(aad)");
  }
  Check(EVP_DecryptUpdate(ctx.get(), reinterpret_cast<uint8_t*>(out.data()), &n, bytes + kNonceSize,
                          static_cast<int>(length)),
        "EVP_DecryptUpdate");
  // The tag is an input here; OpenSSL's API takes a non-const pointer.
  std::array<uint8_t, kTagSize> tag;
  std::copy(bytes + kNonceSize + length, bytes + sealed.size(), tag.begin());
  Check(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize, tag.data()), "EVP_CTRL_GCM_SET_TAG");
  int tail = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<uint8_t*>(out.data()) + n, &tail) != 1) return std::nullopt;
  return out;
}

}  // namespace cairn::crypto
