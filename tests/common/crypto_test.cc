// Sealing of secrets at rest (AES-256-GCM): round trips, and every way a sealed value can be
// wrong is refused rather than misread.
#include "common/crypto.h"

#include <gtest/gtest.h>

#include <set>

namespace cairn::crypto {
namespace {

SealKey TestKey(uint8_t seed) {
  SealKey k;
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(seed + i * 7);
  return k;
}

TEST(SealTest, RoundTripsAndUsesFreshNonces) {
  const SealKey key = TestKey(1);
  std::set<std::string> seen;
  for (const std::string& plain : {std::string(), std::string("s"), std::string(40, 'x'), std::string(1000, '\0')}) {
    const std::string sealed = Seal(key, plain, "AKID");
    EXPECT_EQ(sealed.size(), plain.size() + 28);
    EXPECT_TRUE(seen.insert(sealed).second);
    auto back = Unseal(key, sealed, "AKID");
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, plain);
  }
  // The same secret sealed twice differs (random nonce), so equal secrets are not visible.
  EXPECT_NE(Seal(key, "secret", "a"), Seal(key, "secret", "a"));
}

TEST(SealTest, WrongKeyAssociatedDataOrAnyFlippedBitIsRefused) {
  const SealKey key = TestKey(1);
  const std::string sealed = Seal(key, "the secret key", "AKID1");
  EXPECT_FALSE(Unseal(TestKey(2), sealed, "AKID1").has_value());
  EXPECT_FALSE(Unseal(key, sealed, "AKID2").has_value());
  EXPECT_FALSE(Unseal(key, sealed, "").has_value());
  for (size_t i = 0; i < sealed.size(); ++i) {
    for (int bit = 0; bit < 8; bit += 3) {
      std::string bad = sealed;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      EXPECT_FALSE(Unseal(key, bad, "AKID1").has_value()) << "byte " << i << " bit " << bit;
    }
  }
  for (size_t n = 0; n < sealed.size(); ++n) EXPECT_FALSE(Unseal(key, sealed.substr(0, n), "AKID1").has_value());
}

TEST(RandomBytesTest, FillsDistinctValues) {
  std::array<uint8_t, 32> a{}, b{};
  RandomBytes(a);
  RandomBytes(b);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace cairn::crypto
