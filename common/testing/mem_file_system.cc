#include "common/testing/mem_file_system.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace rdf {

// A file or directory. A directory has no contents; a file keeps what was
// written (`data`) apart from what the last Sync made durable (`synced`).
struct MemFileSystem::Node {
  explicit Node(bool dir) : is_dir(dir) {}
  const bool is_dir;
  absl::Mutex mu;
  std::string data ABSL_GUARDED_BY(mu);
  std::string synced ABSL_GUARDED_BY(mu);
};

namespace {

using Node = MemFileSystem::Node;

// "a//b/" -> "a/b": one spelling per path, so map keys compare.
std::string Normalize(std::string_view path) {
  std::string out;
  for (char c : path) {
    if (c == '/' && !out.empty() && out.back() == '/') continue;
    out.push_back(c);
  }
  if (out.size() > 1 && out.back() == '/') out.pop_back();
  if (out.empty()) return std::string(1, '.');
  return out;
}

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

absl::Status NotFound(absl::string_view op, const std::string& path) {
  return ErrnoToStatus(ENOENT, absl::StrCat(op, " ", path));
}

class MemWritableFile : public WritableFile {
 public:
  explicit MemWritableFile(std::shared_ptr<Node> node) : node_(std::move(node)) {}

  absl::Status Write(uint64_t offset, std::string_view data) override {
    absl::MutexLock l(&node_->mu);
    std::string& d = node_->data;
    if (d.size() < offset + data.size()) d.resize(offset + data.size(), '\0');
    std::memcpy(d.data() + offset, data.data(), data.size());
    return absl::OkStatus();
  }
  absl::Status Sync() override {
    absl::MutexLock l(&node_->mu);
    node_->synced = node_->data;
    return absl::OkStatus();
  }
  absl::Status Allocate(uint64_t size) override {
    absl::MutexLock l(&node_->mu);
    if (node_->data.size() < size) node_->data.resize(size, '\0');
    return absl::OkStatus();
  }
  absl::Status Truncate(uint64_t size) override {
    absl::MutexLock l(&node_->mu);
    node_->data.resize(size, '\0');
    return absl::OkStatus();
  }
  absl::Status Close() override { return absl::OkStatus(); }

 private:
  std::shared_ptr<Node> node_;
};

class MemReadableFile : public ReadableFile {
 public:
  explicit MemReadableFile(std::shared_ptr<Node> node) : node_(std::move(node)) {}

  absl::StatusOr<size_t> Read(uint64_t offset, size_t n,
                              char* scratch) const override {
    absl::MutexLock l(&node_->mu);
    // node_->data itself, not a const reference to it: clang 14's
    // -Wthread-safety loses the held lock through one.
    if (offset >= node_->data.size()) return size_t{0};
    size_t len = std::min<uint64_t>(n, node_->data.size() - offset);
    std::memcpy(scratch, node_->data.data() + offset, len);
    return len;
  }
  absl::StatusOr<uint64_t> Size() const override {
    absl::MutexLock l(&node_->mu);
    return node_->data.size();
  }

 private:
  std::shared_ptr<Node> node_;
};

}  // namespace

MemFileSystem::MemFileSystem() = default;
MemFileSystem::~MemFileSystem() = default;

// The root and the current directory always exist.
static bool IsImplicitDir(const std::string& dir) {
  return dir == "/" || dir == "." || dir.empty();
}

absl::StatusOr<std::unique_ptr<WritableFile>> MemFileSystem::OpenWritable(
    const std::string& path, bool create) {
  const std::string p = Normalize(path);
  absl::MutexLock l(&mu_);
  auto it = files_.find(p);
  if (it != files_.end()) {
    if (it->second->is_dir) {
      return ErrnoToStatus(EISDIR, absl::StrCat("open ", p));
    }
    return std::make_unique<MemWritableFile>(it->second);
  }
  if (!create) return NotFound("open", p);
  const std::string parent = DirName(p);
  if (!IsImplicitDir(parent)) {
    auto dir = files_.find(parent);
    if (dir == files_.end() || !dir->second->is_dir) return NotFound("open", p);
  }
  auto node = std::make_shared<Node>(/*dir=*/false);
  files_[p] = node;
  return std::make_unique<MemWritableFile>(node);
}

absl::StatusOr<std::unique_ptr<ReadableFile>> MemFileSystem::OpenReadable(
    const std::string& path) {
  const std::string p = Normalize(path);
  absl::MutexLock l(&mu_);
  auto it = files_.find(p);
  if (it == files_.end()) return NotFound("open", p);
  if (it->second->is_dir) return ErrnoToStatus(EISDIR, absl::StrCat("open ", p));
  return std::make_unique<MemReadableFile>(it->second);
}

absl::StatusOr<std::vector<std::string>> MemFileSystem::ListDir(
    const std::string& dir) {
  const std::string d = Normalize(dir);
  absl::MutexLock l(&mu_);
  if (!IsImplicitDir(d)) {
    auto it = files_.find(d);
    if (it == files_.end() || !it->second->is_dir) return NotFound("opendir", d);
  }
  std::vector<std::string> names;
  for (const auto& [path, node] : files_) {
    if (path != d && DirName(path) == d) {
      names.push_back(BaseName(path));
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Directories are durable at once (a simplification: the trail code never
// depends on a directory itself surviving a power loss).
absl::Status MemFileSystem::CreateDirs(const std::string& dir) {
  const std::string d = Normalize(dir);
  absl::MutexLock l(&mu_);
  for (size_t i = 1; i <= d.size(); ++i) {
    if (i != d.size() && d[i] != '/') continue;
    std::string prefix = d.substr(0, i);
    if (IsImplicitDir(prefix)) continue;
    auto it = files_.find(prefix);
    if (it != files_.end()) {
      if (!it->second->is_dir) {
        return ErrnoToStatus(ENOTDIR, absl::StrCat("mkdir ", prefix));
      }
      continue;
    }
    auto node = std::make_shared<Node>(/*dir=*/true);
    files_[prefix] = node;
    durable_entries_[prefix] = node;
  }
  return absl::OkStatus();
}

absl::Status MemFileSystem::Remove(const std::string& path) {
  const std::string p = Normalize(path);
  absl::MutexLock l(&mu_);
  auto it = files_.find(p);
  if (it == files_.end()) return NotFound("unlink", p);
  if (it->second->is_dir) return ErrnoToStatus(EISDIR, absl::StrCat("unlink ", p));
  files_.erase(it);
  return absl::OkStatus();
}

absl::Status MemFileSystem::Rename(const std::string& from,
                                   const std::string& to) {
  const std::string f = Normalize(from), t = Normalize(to);
  absl::MutexLock l(&mu_);
  auto it = files_.find(f);
  if (it == files_.end()) return NotFound("rename", absl::StrCat(f, " -> ", t));
  if (it->second->is_dir) {
    return absl::UnimplementedError(absl::StrCat("rename of directory ", f));
  }
  const std::string parent = DirName(t);
  if (!IsImplicitDir(parent) && !files_.contains(parent)) {
    return NotFound("rename", absl::StrCat(f, " -> ", t));
  }
  std::shared_ptr<Node> node = it->second;
  files_.erase(it);
  files_[t] = std::move(node);
  return absl::OkStatus();
}

absl::Status MemFileSystem::SyncDir(const std::string& dir) {
  const std::string d = Normalize(dir);
  absl::MutexLock l(&mu_);
  if (!IsImplicitDir(d) && !files_.contains(d)) return NotFound("fsync", d);
  std::set<std::string> names;
  for (const auto& [path, node] : files_) {
    if (path != d && DirName(path) == d) names.insert(path);
  }
  for (const auto& [path, node] : durable_entries_) {
    if (path != d && DirName(path) == d) names.insert(path);
  }
  for (const std::string& path : names) {
    auto it = files_.find(path);
    if (it == files_.end()) {
      durable_entries_.erase(path);
    } else {
      durable_entries_[path] = it->second;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> MemFileSystem::FileSize(const std::string& path) {
  const std::string p = Normalize(path);
  absl::MutexLock l(&mu_);
  auto it = files_.find(p);
  if (it == files_.end()) return NotFound("stat", p);
  absl::MutexLock nl(&it->second->mu);
  return it->second->data.size();
}

bool MemFileSystem::Exists(const std::string& path) {
  const std::string p = Normalize(path);
  absl::MutexLock l(&mu_);
  return IsImplicitDir(p) || files_.contains(p);
}

void MemFileSystem::DropUnsyncedData() {
  absl::MutexLock l(&mu_);
  files_ = durable_entries_;
  for (auto& [path, node] : files_) {
    absl::MutexLock nl(&node->mu);
    node->data = node->synced;
  }
}

absl::StatusOr<std::string> MemFileSystem::Contents(const std::string& path) {
  const std::string p = Normalize(path);
  absl::MutexLock l(&mu_);
  auto it = files_.find(p);
  if (it == files_.end() || it->second->is_dir) return NotFound("read", p);
  absl::MutexLock nl(&it->second->mu);
  return it->second->data;
}

// Replaces both the current and the synced contents (what is "on disk"), so
// damage made here survives DropUnsyncedData. A missing file is created,
// durably; its directory must exist.
absl::Status MemFileSystem::SetContents(const std::string& path,
                                        std::string contents) {
  const std::string p = Normalize(path);
  absl::MutexLock l(&mu_);
  auto it = files_.find(p);
  if (it == files_.end()) {
    const std::string parent = DirName(p);
    if (!IsImplicitDir(parent) && !files_.contains(parent)) {
      return NotFound("open", p);
    }
    it = files_.emplace(p, std::make_shared<Node>(/*dir=*/false)).first;
    durable_entries_[p] = it->second;
  }
  if (it->second->is_dir) return ErrnoToStatus(EISDIR, absl::StrCat("open ", p));
  absl::MutexLock nl(&it->second->mu);
  it->second->synced = contents;
  it->second->data = std::move(contents);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// FaultInjectingFileSystem

struct FaultInjectingFileSystem::Faults {
  enum Kind { kWrite, kSync, kRead };

  absl::Status Check(Kind kind, const std::string& path) {
    absl::MutexLock l(&mu);
    const absl::Status& s = status[kind];
    if (s.ok()) return s;
    if (!filter.empty() && path.find(filter) == std::string::npos) {
      return absl::OkStatus();
    }
    return Annotate(s, path);
  }

  absl::Mutex mu;
  absl::Status status[3] ABSL_GUARDED_BY(mu);
  std::string filter ABSL_GUARDED_BY(mu);
};

namespace {

using Faults = FaultInjectingFileSystem::Faults;

class FaultWritableFile : public WritableFile {
 public:
  FaultWritableFile(std::unique_ptr<WritableFile> base, std::string path,
                    std::shared_ptr<Faults> faults)
      : base_(std::move(base)), path_(std::move(path)), faults_(std::move(faults)) {}

  absl::Status Write(uint64_t offset, std::string_view data) override {
    RDF_RETURN_IF_ERROR(faults_->Check(Faults::kWrite, path_));
    return base_->Write(offset, data);
  }
  absl::Status Sync() override {
    RDF_RETURN_IF_ERROR(faults_->Check(Faults::kSync, path_));
    return base_->Sync();
  }
  absl::Status Allocate(uint64_t size) override {
    RDF_RETURN_IF_ERROR(faults_->Check(Faults::kWrite, path_));
    return base_->Allocate(size);
  }
  absl::Status Truncate(uint64_t size) override { return base_->Truncate(size); }
  absl::Status Close() override { return base_->Close(); }

 private:
  std::unique_ptr<WritableFile> base_;
  std::string path_;
  std::shared_ptr<Faults> faults_;
};

class FaultReadableFile : public ReadableFile {
 public:
  FaultReadableFile(std::unique_ptr<ReadableFile> base, std::string path,
                    std::shared_ptr<Faults> faults)
      : base_(std::move(base)), path_(std::move(path)), faults_(std::move(faults)) {}

  absl::StatusOr<size_t> Read(uint64_t offset, size_t n,
                              char* scratch) const override {
    RDF_RETURN_IF_ERROR(faults_->Check(Faults::kRead, path_));
    return base_->Read(offset, n, scratch);
  }
  absl::StatusOr<uint64_t> Size() const override { return base_->Size(); }

 private:
  std::unique_ptr<ReadableFile> base_;
  std::string path_;
  std::shared_ptr<Faults> faults_;
};

}  // namespace

FaultInjectingFileSystem::FaultInjectingFileSystem(FileSystem* base)
    : base_(base), faults_(std::make_shared<Faults>()) {}
FaultInjectingFileSystem::~FaultInjectingFileSystem() = default;

void FaultInjectingFileSystem::SetWriteError(absl::Status s) {
  absl::MutexLock l(&faults_->mu);
  faults_->status[Faults::kWrite] = std::move(s);
}
void FaultInjectingFileSystem::SetSyncError(absl::Status s) {
  absl::MutexLock l(&faults_->mu);
  faults_->status[Faults::kSync] = std::move(s);
}
void FaultInjectingFileSystem::SetReadError(absl::Status s) {
  absl::MutexLock l(&faults_->mu);
  faults_->status[Faults::kRead] = std::move(s);
}
void FaultInjectingFileSystem::SetPathFilter(std::string substring) {
  absl::MutexLock l(&faults_->mu);
  faults_->filter = std::move(substring);
}

absl::StatusOr<std::unique_ptr<WritableFile>>
FaultInjectingFileSystem::OpenWritable(const std::string& path, bool create) {
  RDF_ASSIGN_OR_RETURN(auto file, base_->OpenWritable(path, create));
  return std::make_unique<FaultWritableFile>(std::move(file), path, faults_);
}
absl::StatusOr<std::unique_ptr<ReadableFile>>
FaultInjectingFileSystem::OpenReadable(const std::string& path) {
  RDF_ASSIGN_OR_RETURN(auto file, base_->OpenReadable(path));
  return std::make_unique<FaultReadableFile>(std::move(file), path, faults_);
}
absl::StatusOr<std::vector<std::string>> FaultInjectingFileSystem::ListDir(
    const std::string& dir) {
  return base_->ListDir(dir);
}
absl::Status FaultInjectingFileSystem::CreateDirs(const std::string& dir) {
  return base_->CreateDirs(dir);
}
absl::Status FaultInjectingFileSystem::Remove(const std::string& path) {
  return base_->Remove(path);
}
absl::Status FaultInjectingFileSystem::Rename(const std::string& from,
                                              const std::string& to) {
  return base_->Rename(from, to);
}
absl::Status FaultInjectingFileSystem::SyncDir(const std::string& dir) {
  RDF_RETURN_IF_ERROR(faults_->Check(Faults::kSync, dir));
  return base_->SyncDir(dir);
}
absl::StatusOr<uint64_t> FaultInjectingFileSystem::FileSize(
    const std::string& path) {
  return base_->FileSize(path);
}
bool FaultInjectingFileSystem::Exists(const std::string& path) {
  return base_->Exists(path);
}

}  // namespace rdf
