// Test file systems: an in-memory one that remembers what was synced, and a
// forwarding wrapper that fails on demand.
#ifndef RDF_COMMON_TESTING_MEM_FILE_SYSTEM_H_
#define RDF_COMMON_TESTING_MEM_FILE_SYSTEM_H_

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/base/file_system.h"

namespace rdf {

// Files live in memory. Each file keeps its synced contents apart from its
// current contents, and the set of directory entries made durable by
// SyncDir, so DropUnsyncedData() simulates a power loss. Thread-safe.
class MemFileSystem : public FileSystem {
 public:
  MemFileSystem();
  ~MemFileSystem() override;

  absl::StatusOr<std::unique_ptr<WritableFile>> OpenWritable(
      const std::string& path, bool create) override;
  absl::StatusOr<std::unique_ptr<ReadableFile>> OpenReadable(
      const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) override;
  absl::Status CreateDirs(const std::string& dir) override;
  absl::Status Remove(const std::string& path) override;
  absl::Status Rename(const std::string& from, const std::string& to) override;
  absl::Status SyncDir(const std::string& dir) override;
  absl::StatusOr<uint64_t> FileSize(const std::string& path) override;
  bool Exists(const std::string& path) override;

  // Power loss: every file reverts to its last synced contents; files whose
  // creation (or rename) was never made durable by SyncDir disappear.
  void DropUnsyncedData();

  // Direct access for tests (corrupting bytes, truncating). SetContents
  // sets both the current and the synced contents ("what is on disk"), and
  // makes a new file's directory entry durable.
  absl::StatusOr<std::string> Contents(const std::string& path);
  absl::Status SetContents(const std::string& path, std::string contents);

  struct Node;

 private:
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Node>> files_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<Node>> durable_entries_
      ABSL_GUARDED_BY(mu_);
};

// Forwards to `base` (not owned) but can be told to fail. Each Fail* call
// arms a failure for matching operations until cleared.
class FaultInjectingFileSystem : public FileSystem {
 public:
  explicit FaultInjectingFileSystem(FileSystem* base);
  ~FaultInjectingFileSystem() override;

  // Writes (and Allocate) fail with `s` (e.g. ENOSPC as kResourceExhausted)
  // when `s` is not OK; OK clears.
  void SetWriteError(absl::Status s);
  // Syncs (file and directory) fail with `s`; OK clears.
  void SetSyncError(absl::Status s);
  // Reads fail with `s`; OK clears.
  void SetReadError(absl::Status s);
  // Only operations whose path contains `substring` fail (empty: all).
  void SetPathFilter(std::string substring);

  absl::StatusOr<std::unique_ptr<WritableFile>> OpenWritable(
      const std::string& path, bool create) override;
  absl::StatusOr<std::unique_ptr<ReadableFile>> OpenReadable(
      const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) override;
  absl::Status CreateDirs(const std::string& dir) override;
  absl::Status Remove(const std::string& path) override;
  absl::Status Rename(const std::string& from, const std::string& to) override;
  absl::Status SyncDir(const std::string& dir) override;
  absl::StatusOr<uint64_t> FileSize(const std::string& path) override;
  bool Exists(const std::string& path) override;

  struct Faults;

 private:
  FileSystem* base_;
  std::shared_ptr<Faults> faults_;
};

}  // namespace rdf

#endif  // RDF_COMMON_TESTING_MEM_FILE_SYSTEM_H_
