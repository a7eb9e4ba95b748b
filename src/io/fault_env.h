// FaultEnv: an Env wrapper that injects the failures the engine must survive, for tests.
//
//  - errors: EIO or ENOSPC returned from chosen calls (by operation, path substring, and either
//    the n-th matching call or a probability drawn from the seed);
//  - power cut: DropUnsyncedData() forgets everything not made durable, as a machine that lost
//    power would: each file is cut back to the size it had at its last Sync (or WriteAtAndSync),
//    and files created (or renamed into place) since the last SyncDir of their directory vanish;
//  - bit flips on read: data returned by ReadAt for chosen files gets a bit flipped.
//
// Data written through the wrapper goes to the real files underneath, so the engine can be
// reopened on a plain Env after a simulated power cut.
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "io/clock.h"
#include "io/file.h"

namespace cairn::io {

enum class FaultOp : uint8_t { kRead, kWrite, kSync, kOpen, kAllocate, kTruncate, kRename, kDelete, kSyncDir };

struct FaultRule {
  FaultOp op = FaultOp::kWrite;
  std::string path_contains;  // empty: every path
  int error = 5;              // errno to return: EIO (5) or ENOSPC (28), ...
  // Fire on the n-th matching call (1-based) and every later one when `sticky`; 0: use probability.
  uint64_t nth = 0;
  double probability = 0.0;
  bool sticky = false;
};

class FaultEnv final : public Env {
 public:
  // `base` must outlive this object. `seed` drives every probabilistic choice.
  FaultEnv(Env* base, uint64_t seed);
  ~FaultEnv() override;

  // Adds a rule; returns its id.
  int AddRule(const FaultRule& rule);
  void ClearRules();
  // Number of faults injected so far.
  uint64_t InjectedCount() const;

  // Flips one bit in data returned by ReadAt for files whose path contains `path_contains`,
  // with the given probability per call (1.0: every read).
  void SetReadBitFlips(const std::string& path_contains, double probability);

  // Simulates a power cut: see the file comment. Files opened through this Env must not be used
  // afterwards (their writes would land after the "cut").
  Status DropUnsyncedData();

  Backend backend() const override;
  Result<std::unique_ptr<File>> OpenFile(const std::string& path, const OpenOptions& options) override;
  Status DeleteFile(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;
  Status SyncDir(const std::string& dir) override;
  Status CreateDirs(const std::string& dir) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Result<bool> FileExists(const std::string& path) override;
  Result<uint64_t> FreeSpace(const std::string& path) override;
  bool SupportsDirect(const std::string& dir) override;

  // Used by the wrapped files; not part of the test API.
  Status MaybeFail(FaultOp op, const std::string& path);
  void NoteSynced(const std::string& path, uint64_t size);
  bool ShouldFlipBit(const std::string& path, uint64_t* bit_choice);

 private:
  struct RuleState {
    FaultRule rule;
    uint64_t matches = 0;
  };
  struct FileState {
    uint64_t synced_size = 0;
    bool durable_name = true;  // false until a SyncDir of its directory after creation/rename
  };

  Env* base_;
  mutable std::mutex mu_;
  Random rng_;                              // guarded by mu_
  std::vector<RuleState> rules_;            // guarded by mu_
  uint64_t injected_ = 0;                   // guarded by mu_
  std::string flip_path_;                   // guarded by mu_
  double flip_probability_ = 0.0;           // guarded by mu_
  std::map<std::string, FileState> files_;  // guarded by mu_; every file touched through us
};

}  // namespace cairn::io
