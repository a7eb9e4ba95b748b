// FaultEnv: see fault_env.h for what it simulates.
//
// Bookkeeping for power cuts: every file opened, renamed or synced through this Env has a
// FileState in files_, keyed by path. synced_size is the size the file had at its last
// successful Sync or WriteAtAndSync (for a file that existed before it was first opened here, its
// size at that open). durable_name is false from creation or rename until a SyncDir of the
// file's directory: that is what ext4 and xfs do on power loss, where fdatasync on a new file
// makes its data durable but not the directory entry that names it.
//
// Rules are evaluated in the order they were added; each matching rule counts the call (so the
// n-th matching call is independent of other rules), and the first rule that fires gives the
// error. Probabilities are drawn from one generator seeded at construction, so a single-threaded
// test replays exactly from its seed.
//
// Thread-safety: mu_ guards all state; it is never held across a call into a FaultFile, and the
// base Env is called with it held only by DropUnsyncedData.
#include "io/fault_env.h"

#include <filesystem>
#include <string>
#include <utility>

namespace cairn::io {

namespace {

std::string_view OpName(FaultOp op) {
  switch (op) {
    case FaultOp::kRead:
      return "read";
    case FaultOp::kWrite:
      return "write";
    case FaultOp::kSync:
      return "sync";
    case FaultOp::kOpen:
      return "open";
    case FaultOp::kAllocate:
      return "allocate";
    case FaultOp::kTruncate:
      return "truncate";
    case FaultOp::kRename:
      return "rename";
    case FaultOp::kDelete:
      return "delete";
    case FaultOp::kSyncDir:
      return "syncdir";
  }
  return "?";
}

// The directory holding `path`, normalised so that "d/x" and "d//x" agree, without a trailing
// separator.
std::string ParentDir(const std::string& path) {
  std::string parent = std::filesystem::path(path).lexically_normal().parent_path().string();
  return parent.empty() ? "." : parent;
}

std::string NormalDir(const std::string& dir) {
  std::string d = std::filesystem::path(dir).lexically_normal().string();
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d;
}

class FaultFile final : public File {
 public:
  FaultFile(FaultEnv* env, std::unique_ptr<File> base)
      : File(base->path(), base->DirectAlignment()), env_(env), base_(std::move(base)) {}

  Result<size_t> ReadAt(uint64_t offset, std::span<std::byte> buf) override {
    CAIRN_RETURN_IF_ERROR(env_->MaybeFail(FaultOp::kRead, path()));
    CAIRN_ASSIGN_OR_RETURN(size_t n, base_->ReadAt(offset, buf));
    uint64_t bit = 0;
    if (n > 0 && env_->ShouldFlipBit(path(), &bit)) {
      bit %= static_cast<uint64_t>(n) * 8;
      buf[bit / 8] ^= static_cast<std::byte>(1u << (bit % 8));
    }
    return n;
  }

  Status WriteAt(uint64_t offset, std::span<const iovec> iov) override {
    CAIRN_RETURN_IF_ERROR(env_->MaybeFail(FaultOp::kWrite, path()));
    return base_->WriteAt(offset, iov);
  }

  // Counts as a write and as a sync. A sync fault leaves the data written but not durable, as a
  // failed fdatasync does.
  Status WriteAtAndSync(uint64_t offset, std::span<const iovec> iov) override {
    CAIRN_RETURN_IF_ERROR(env_->MaybeFail(FaultOp::kWrite, path()));
    if (Status s = env_->MaybeFail(FaultOp::kSync, path()); !s.ok()) {
      CAIRN_RETURN_IF_ERROR(base_->WriteAt(offset, iov));
      return s;
    }
    CAIRN_RETURN_IF_ERROR(base_->WriteAtAndSync(offset, iov));
    return NoteSynced();
  }

  Status Sync() override {
    CAIRN_RETURN_IF_ERROR(env_->MaybeFail(FaultOp::kSync, path()));
    CAIRN_RETURN_IF_ERROR(base_->Sync());
    return NoteSynced();
  }

  Result<uint64_t> Size() override { return base_->Size(); }

  Status Truncate(uint64_t size) override {
    CAIRN_RETURN_IF_ERROR(env_->MaybeFail(FaultOp::kTruncate, path()));
    return base_->Truncate(size);
  }

  Status Allocate(uint64_t offset, uint64_t len) override {
    CAIRN_RETURN_IF_ERROR(env_->MaybeFail(FaultOp::kAllocate, path()));
    return base_->Allocate(offset, len);
  }

  int fd() const override { return base_->fd(); }

 private:
  Status NoteSynced() {
    CAIRN_ASSIGN_OR_RETURN(uint64_t size, base_->Size());
    env_->NoteSynced(path(), size);
    return Status::OK();
  }

  FaultEnv* const env_;
  const std::unique_ptr<File> base_;
};

}  // namespace

FaultEnv::FaultEnv(Env* base, uint64_t seed) : base_(base), rng_(seed) {}

FaultEnv::~FaultEnv() = default;

int FaultEnv::AddRule(const FaultRule& rule) {
  std::lock_guard lock(mu_);
  rules_.push_back(RuleState{rule, 0});
  return static_cast<int>(rules_.size() - 1);
}

void FaultEnv::ClearRules() {
  std::lock_guard lock(mu_);
  rules_.clear();
}

uint64_t FaultEnv::InjectedCount() const {
  std::lock_guard lock(mu_);
  return injected_;
}

void FaultEnv::SetReadBitFlips(const std::string& path_contains, double probability) {
  std::lock_guard lock(mu_);
  flip_path_ = path_contains;
  flip_probability_ = probability;
}

Status FaultEnv::MaybeFail(FaultOp op, const std::string& path) {
  std::lock_guard lock(mu_);
  int error = 0;
  for (RuleState& r : rules_) {
    if (r.rule.op != op) continue;
    if (!r.rule.path_contains.empty() && path.find(r.rule.path_contains) == std::string::npos) continue;
    ++r.matches;
    bool fire;
    if (r.rule.nth > 0) {
      fire = r.matches == r.rule.nth || (r.rule.sticky && r.matches > r.rule.nth);
    } else {
      fire = rng_.OneIn(r.rule.probability);
    }
    if (fire && error == 0) error = r.rule.error;
  }
  if (error == 0) return Status::OK();
  ++injected_;
  return Status::FromErrno(error, "injected fault: " + std::string(OpName(op)) + " " + path);
}

void FaultEnv::NoteSynced(const std::string& path, uint64_t size) {
  std::lock_guard lock(mu_);
  files_[path].synced_size = size;
}

bool FaultEnv::ShouldFlipBit(const std::string& path, uint64_t* bit_choice) {
  std::lock_guard lock(mu_);
  if (flip_probability_ <= 0.0) return false;
  if (!flip_path_.empty() && path.find(flip_path_) == std::string::npos) return false;
  if (!rng_.OneIn(flip_probability_)) return false;
  *bit_choice = rng_.Next();
  ++injected_;
  return true;
}

Status FaultEnv::DropUnsyncedData() {
  std::lock_guard lock(mu_);
  Status first_error;
  for (const auto& [path, state] : files_) {
    Status s;
    if (!state.durable_name) {
      s = base_->DeleteFile(path);
      if (s.IsNotFound()) s = Status::OK();
    } else {
      auto file = base_->OpenFile(path, OpenOptions{});
      if (!file.ok()) {
        s = file.status().IsNotFound() ? Status::OK() : file.status();
      } else {
        auto size = (*file)->Size();
        if (!size.ok()) {
          s = size.status();
        } else if (*size > state.synced_size) {
          // Only ever cut: a file shortened after its last sync keeps its shorter size.
          s = (*file)->Truncate(state.synced_size);
        }
      }
    }
    if (!s.ok() && first_error.ok()) first_error = s.WithContext("DropUnsyncedData");
  }
  // What survived is now durable as it stands; later opens start tracking afresh.
  files_.clear();
  return first_error;
}

Backend FaultEnv::backend() const { return base_->backend(); }

Result<std::unique_ptr<File>> FaultEnv::OpenFile(const std::string& path, const OpenOptions& options) {
  CAIRN_RETURN_IF_ERROR(MaybeFail(FaultOp::kOpen, path));
  bool existed = true;
  if (options.create) {
    CAIRN_ASSIGN_OR_RETURN(existed, base_->FileExists(path));
  }
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<File> base_file, base_->OpenFile(path, options));
  uint64_t size = 0;
  if (existed) {
    CAIRN_ASSIGN_OR_RETURN(size, base_file->Size());
  }
  {
    std::lock_guard lock(mu_);
    if (files_.find(path) == files_.end()) {
      FileState& st = files_[path];
      // A file that was there before we saw it counts as durable as found; a new one has no
      // durable data and no durable name yet.
      st.synced_size = size;
      st.durable_name = existed;
    }
  }
  return std::unique_ptr<File>(std::make_unique<FaultFile>(this, std::move(base_file)));
}

Status FaultEnv::DeleteFile(const std::string& path) {
  CAIRN_RETURN_IF_ERROR(MaybeFail(FaultOp::kDelete, path));
  CAIRN_RETURN_IF_ERROR(base_->DeleteFile(path));
  std::lock_guard lock(mu_);
  files_.erase(path);
  return Status::OK();
}

Status FaultEnv::RenameFile(const std::string& from, const std::string& to) {
  CAIRN_RETURN_IF_ERROR(MaybeFail(FaultOp::kRename, from));
  // A source we never opened is taken as durable with its current size.
  FileState moved;
  bool tracked;
  {
    std::lock_guard lock(mu_);
    auto it = files_.find(from);
    tracked = it != files_.end();
    if (tracked) moved = it->second;
  }
  if (!tracked) {
    CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<File> f, base_->OpenFile(from, OpenOptions{.read_only = true}));
    CAIRN_ASSIGN_OR_RETURN(moved.synced_size, f->Size());
  }
  CAIRN_RETURN_IF_ERROR(base_->RenameFile(from, to));
  std::lock_guard lock(mu_);
  files_.erase(from);
  moved.durable_name = false;
  files_[to] = moved;
  return Status::OK();
}

Status FaultEnv::SyncDir(const std::string& dir) {
  CAIRN_RETURN_IF_ERROR(MaybeFail(FaultOp::kSyncDir, dir));
  CAIRN_RETURN_IF_ERROR(base_->SyncDir(dir));
  const std::string want = NormalDir(dir);
  std::lock_guard lock(mu_);
  for (auto& [path, state] : files_) {
    if (ParentDir(path) == want) state.durable_name = true;
  }
  return Status::OK();
}

Status FaultEnv::CreateDirs(const std::string& dir) { return base_->CreateDirs(dir); }

Result<std::vector<std::string>> FaultEnv::ListDir(const std::string& dir) { return base_->ListDir(dir); }

Result<bool> FaultEnv::FileExists(const std::string& path) { return base_->FileExists(path); }

Result<uint64_t> FaultEnv::FreeSpace(const std::string& path) { return base_->FreeSpace(path); }

bool FaultEnv::SupportsDirect(const std::string& dir) { return base_->SupportsDirect(dir); }

}  // namespace cairn::io
