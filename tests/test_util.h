// Shared test plumbing: status assertions that print the error, waiting for a condition, and
// scratch directories.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "common/result.h"
#include "common/status.h"

#define ASSERT_OK(expr)                                  \
  do {                                                   \
    const ::cairn::Status _s = ::cairn::test::ToStatus(expr); \
    ASSERT_TRUE(_s.ok()) << #expr << " -> " << _s.ToString(); \
  } while (0)
#define EXPECT_OK(expr)                                  \
  do {                                                   \
    const ::cairn::Status _s = ::cairn::test::ToStatus(expr); \
    EXPECT_TRUE(_s.ok()) << #expr << " -> " << _s.ToString(); \
  } while (0)

namespace cairn::test {

inline Status ToStatus(const Status& s) { return s; }

// Polls `done` every 10 ms until it holds or `limit` passes; its last answer.
template <class F>
bool WaitFor(F done, std::chrono::milliseconds limit = std::chrono::seconds(15)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}
template <typename T>
Status ToStatus(const Result<T>& r) {
  return r.ok() ? Status::OK() : r.status();
}

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction unless
// the environment sets CAIRN_KEEP_TEST_DIRS=1.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A directory on a real disk (not tmpfs), so that O_DIRECT and fdatasync behave as in
// production: $CAIRN_TEST_DISK_DIR if set, else ./ (the build tree).
std::string DiskTestRoot();

}  // namespace cairn::test
