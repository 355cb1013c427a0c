// The file-system seam (after leveldb's Env): every byte the pipeline keeps
// goes through these interfaces, so tests can substitute an in-memory file
// system that can drop unsynced data (a power loss) or a forwarding wrapper
// that fails on demand (ENOSPC, EIO).
//
// Errors: ENOSPC -> kResourceExhausted, ENOENT -> kNotFound, other I/O
// errors -> kInternal (see ErrnoToStatus). Messages name the path.
#ifndef RDF_COMMON_BASE_FILE_SYSTEM_H_
#define RDF_COMMON_BASE_FILE_SYSTEM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rdf {

// A file opened for positional writing. One writer per file; not
// thread-safe.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Writes `data` at `offset` (pwrite), extending the file if needed.
  virtual absl::Status Write(uint64_t offset, std::string_view data) = 0;
  // Makes every completed Write durable (fdatasync).
  virtual absl::Status Sync() = 0;
  // Reserves [0, size) so later writes inside it need no allocation; the
  // file's size becomes at least `size` and unwritten bytes read as zero
  // (fallocate). May be a no-op on file systems that cannot.
  virtual absl::Status Allocate(uint64_t size) = 0;
  // Sets the file's size; bytes past it are gone.
  virtual absl::Status Truncate(uint64_t size) = 0;
  virtual absl::Status Close() = 0;
};

// A file opened for positional reading; thread-safe.
class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  // Reads up to `n` bytes at `offset` into `scratch`; returns how many were
  // read (fewer only at end of file).
  virtual absl::StatusOr<size_t> Read(uint64_t offset, size_t n,
                                      char* scratch) const = 0;
  virtual absl::StatusOr<uint64_t> Size() const = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // The real (POSIX) file system; never null, never deleted.
  static FileSystem* Default();

  // Opens `path` for writing; creates it when `create` and it is missing.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> OpenWritable(
      const std::string& path, bool create) = 0;
  virtual absl::StatusOr<std::unique_ptr<ReadableFile>> OpenReadable(
      const std::string& path) = 0;
  // Names (not paths) of the entries of `dir`, sorted, without "." and "..".
  virtual absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) = 0;
  // mkdir -p.
  virtual absl::Status CreateDirs(const std::string& dir) = 0;
  virtual absl::Status Remove(const std::string& path) = 0;
  virtual absl::Status Rename(const std::string& from,
                              const std::string& to) = 0;
  // Makes the directory's entries (creates, renames, removes) durable.
  virtual absl::Status SyncDir(const std::string& dir) = 0;
  virtual absl::StatusOr<uint64_t> FileSize(const std::string& path) = 0;
  virtual bool Exists(const std::string& path) = 0;
};

// Write-temp, fsync, rename, fsync the directory: after a crash `path` holds
// either its old contents or `contents`, never a mix.
absl::Status WriteFileAtomically(FileSystem* fs, const std::string& path,
                                 std::string_view contents);
absl::StatusOr<std::string> ReadFileToString(FileSystem* fs,
                                             const std::string& path);

// Path helpers.
std::string JoinPath(std::string_view a, std::string_view b);
std::string DirName(std::string_view path);

}  // namespace rdf

#endif  // RDF_COMMON_BASE_FILE_SYSTEM_H_
