#include "test_util.h"

#include <cstdlib>
#include <filesystem>

namespace cairn::test {

std::string DiskTestRoot() {
  const char* dir = std::getenv("CAIRN_TEST_DISK_DIR");
  if (dir != nullptr && *dir != '\0') return dir;
  return std::filesystem::current_path().string();
}

TempDir::TempDir() {
  std::string tmpl = DiskTestRoot() + "/cairn-test-XXXXXX";
  char* made = mkdtemp(tmpl.data());
  if (made == nullptr) std::abort();
  path_ = made;
}

TempDir::~TempDir() {
  const char* keep = std::getenv("CAIRN_KEEP_TEST_DIRS");
  if (keep != nullptr && std::string(keep) == "1") return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace cairn::test
