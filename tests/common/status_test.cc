#include "common/status.h"

#include <cerrno>

#include "common/crc32c.h"
#include "common/result.h"
#include "test_util.h"

namespace cairn {
namespace {

TEST(StatusTest, OkHasNoMessage) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "Ok");
}

TEST(StatusTest, CarriesCodeAndMessage) {
  Status s = Status::Corruption("segment 3: bad crc");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_EQ(s.ToString(), "Corruption: segment 3: bad crc");
  EXPECT_EQ(s.WithContext("read").ToString(), "Corruption: read: segment 3: bad crc");
}

TEST(StatusTest, ErrnoMapsToCodesCallersActOn) {
  EXPECT_TRUE(Status::FromErrno(ENOSPC, "write").IsNoSpace());
  EXPECT_TRUE(Status::FromErrno(EIO, "write").IsIOError());
  EXPECT_TRUE(Status::FromErrno(ENOENT, "open").IsNotFound());
}

TEST(StatusTest, NamesComeFromTheTable) {
  EXPECT_EQ(StatusCodeName(StatusCode::kNoSpace), "NoSpace");
  EXPECT_EQ(StatusCodeDescription(StatusCode::kNotFound), "not found");
}

Result<int> Half(int x) {
  if (x % 2 != 0) return Status::InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  CAIRN_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(ResultTest, ValueOrStatus) {
  ASSERT_OK(Quarter(8));
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_TRUE(Quarter(6).status().IsInvalidArgument());
}

TEST(Crc32cTest, StandardCheckValue) {
  EXPECT_EQ(crc32c::Value("123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c::Value("", 0), 0u);
}

TEST(Crc32cTest, ExtendEqualsWhole) {
  EXPECT_EQ(crc32c::Extend(crc32c::Value("hello ", 6), "world", 5), crc32c::Value("hello world", 11));
}

}  // namespace
}  // namespace cairn
