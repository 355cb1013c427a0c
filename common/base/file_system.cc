#include "common/base/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace rdf {
namespace {

// See RemoveGradually.
constexpr uint64_t kGradualRemoveStepBytes = 1 << 20;
constexpr useconds_t kGradualRemovePauseMicros = 1000;
constexpr char kRemovingSuffix[] = ".removing";

absl::Status PathError(absl::string_view op, const std::string& path) {
  return ErrnoToStatus(errno, absl::StrCat(op, " ", path));
}

// Retries a system call that failed with EINTR.
template <typename F>
auto RetryEintr(F f) {
  decltype(f()) r;
  do {
    r = f();
  } while (r == -1 && errno == EINTR);
  return r;
}

class PosixWritableFile : public WritableFile {
 public:
  PosixWritableFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) close(fd_);
  }

  absl::Status Write(uint64_t offset, std::string_view data) override {
    while (!data.empty()) {
      ssize_t n = RetryEintr([&] {
        return pwrite(fd_, data.data(), data.size(), static_cast<off_t>(offset));
      });
      if (n < 0) return PathError("write", path_);
      if (n == 0) return ErrnoToStatus(EIO, absl::StrCat("write ", path_));
      data.remove_prefix(static_cast<size_t>(n));
      offset += static_cast<uint64_t>(n);
    }
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    if (RetryEintr([&] { return fdatasync(fd_); }) != 0) {
      return PathError("fdatasync", path_);
    }
    return absl::OkStatus();
  }

  absl::Status Allocate(uint64_t size) override {
    if (size == 0) return absl::OkStatus();
    int r = RetryEintr(
        [&] { return fallocate(fd_, 0, 0, static_cast<off_t>(size)); });
    if (r == 0) return absl::OkStatus();
    // Some file systems (tmpfs of old kernels, NFS, ...) cannot reserve: the
    // file then grows as it is written and readers see its end as the end.
    if (errno == EOPNOTSUPP || errno == ENOSYS) return absl::OkStatus();
    return PathError("fallocate", path_);
  }

  absl::Status Truncate(uint64_t size) override {
    if (RetryEintr([&] { return ftruncate(fd_, static_cast<off_t>(size)); }) !=
        0) {
      return PathError("ftruncate", path_);
    }
    return absl::OkStatus();
  }

  absl::Status Close() override {
    if (fd_ < 0) return absl::OkStatus();
    int r = close(fd_);  // never retried: the descriptor is gone either way
    fd_ = -1;
    if (r != 0 && errno != EINTR) return PathError("close", path_);
    return absl::OkStatus();
  }

 private:
  int fd_;
  std::string path_;
};

class PosixReadableFile : public ReadableFile {
 public:
  PosixReadableFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixReadableFile() override { close(fd_); }

  absl::StatusOr<size_t> Read(uint64_t offset, size_t n,
                              char* scratch) const override {
    size_t done = 0;
    while (done < n) {
      ssize_t r = RetryEintr([&] {
        return pread(fd_, scratch + done, n - done,
                     static_cast<off_t>(offset + done));
      });
      if (r < 0) return PathError("read", path_);
      if (r == 0) break;  // end of file
      done += static_cast<size_t>(r);
    }
    return done;
  }

  absl::StatusOr<uint64_t> Size() const override {
    struct stat st;
    if (fstat(fd_, &st) != 0) return PathError("fstat", path_);
    return static_cast<uint64_t>(st.st_size);
  }

 private:
  int fd_;
  std::string path_;
};

class PosixFileSystem : public FileSystem {
 public:
  absl::StatusOr<std::unique_ptr<WritableFile>> OpenWritable(
      const std::string& path, bool create) override {
    int flags = O_WRONLY | O_CLOEXEC | (create ? O_CREAT : 0);
    int fd = RetryEintr([&] { return open(path.c_str(), flags, 0644); });
    if (fd < 0) return PathError("open", path);
    return std::make_unique<PosixWritableFile>(fd, path);
  }

  absl::StatusOr<std::unique_ptr<ReadableFile>> OpenReadable(
      const std::string& path) override {
    int fd = RetryEintr([&] { return open(path.c_str(), O_RDONLY | O_CLOEXEC); });
    if (fd < 0) return PathError("open", path);
    return std::make_unique<PosixReadableFile>(fd, path);
  }

  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) override {
    int fd = RetryEintr([&] {
      return open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    });
    if (fd < 0) return PathError("opendir", dir);
    DIR* d = fdopendir(fd);
    if (d == nullptr) {
      absl::Status s = PathError("opendir", dir);
      close(fd);
      return s;
    }
    absl::Cleanup closer = [d] { closedir(d); };
    std::vector<std::string> names;
    errno = 0;
    while (dirent* e = readdir(d)) {
      std::string_view name(e->d_name);
      if (name != "." && name != "..") names.emplace_back(name);
    }
    if (errno != 0) return PathError("readdir", dir);
    std::sort(names.begin(), names.end());
    return names;
  }

  absl::Status CreateDirs(const std::string& dir) override {
    for (size_t i = 1; i <= dir.size(); ++i) {
      if (i != dir.size() && dir[i] != '/') continue;
      std::string prefix = dir.substr(0, i);
      if (mkdir(prefix.c_str(), 0755) == 0) continue;
      if (errno != EEXIST) return PathError("mkdir", prefix);
      struct stat st;
      if (stat(prefix.c_str(), &st) != 0) return PathError("stat", prefix);
      if (!S_ISDIR(st.st_mode)) {
        return ErrnoToStatus(ENOTDIR, absl::StrCat("mkdir ", prefix));
      }
    }
    return absl::OkStatus();
  }

  absl::Status Remove(const std::string& path) override {
    struct stat st;
    if (lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        static_cast<uint64_t>(st.st_size) > kGradualRemoveStepBytes) {
      return RemoveGradually(path, static_cast<uint64_t>(st.st_size));
    }
    if (unlink(path.c_str()) != 0) return PathError("unlink", path);
    return absl::OkStatus();
  }

  // A file system mounted with `discard` trims every block a removal frees,
  // and the device takes no flush meanwhile: on this project's test machine
  // (ext4, discard, virtio disk) unlinking a 64 MiB file held a concurrent
  // 600-byte append + fdatasync loop for up to 40 ms. Freed a step at a
  // time with a pause between, the longest fdatasync was 3 ms. The file is
  // renamed first, so it leaves its name (and its trail) at once; a crash
  // in between leaves a `.removing` file, removed by the next large removal
  // in that folder.
  absl::Status RemoveGradually(const std::string& path, uint64_t size) {
    const std::string doomed = absl::StrCat(path, kRemovingSuffix);
    if (rename(path.c_str(), doomed.c_str()) != 0) return PathError("rename", path);
    int fd = RetryEintr([&] { return open(doomed.c_str(), O_WRONLY | O_CLOEXEC); });
    if (fd >= 0) {
      while (size > 0) {
        size = size > kGradualRemoveStepBytes ? size - kGradualRemoveStepBytes : 0;
        if (ftruncate(fd, static_cast<off_t>(size)) != 0) break;  // unlink frees the rest
        if (size > 0) usleep(kGradualRemovePauseMicros);
      }
      close(fd);
    }
    // ENOENT: another removal in this folder took it for a crash's leftover.
    if (unlink(doomed.c_str()) != 0 && errno != ENOENT) return PathError("unlink", doomed);
    RemoveLeftovers(path);
    return absl::OkStatus();
  }

  // `.removing` files of a crashed RemoveGradually beside `path`.
  void RemoveLeftovers(const std::string& path) {
    const size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
    absl::StatusOr<std::vector<std::string>> names = ListDir(dir);
    if (!names.ok()) return;
    for (const std::string& n : *names) {
      if (absl::EndsWith(n, kRemovingSuffix)) unlink(JoinPath(dir, n).c_str());
    }
  }

  absl::Status Rename(const std::string& from, const std::string& to) override {
    if (rename(from.c_str(), to.c_str()) != 0) {
      return PathError("rename", absl::StrCat(from, " -> ", to));
    }
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& dir) override {
    int fd = RetryEintr([&] {
      return open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    });
    if (fd < 0) return PathError("open", dir);
    int r = RetryEintr([&] { return fsync(fd); });
    absl::Status s = r == 0 ? absl::OkStatus() : PathError("fsync", dir);
    close(fd);
    return s;
  }

  absl::StatusOr<uint64_t> FileSize(const std::string& path) override {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return PathError("stat", path);
    return static_cast<uint64_t>(st.st_size);
  }

  bool Exists(const std::string& path) override {
    struct stat st;
    return stat(path.c_str(), &st) == 0;
  }
};

}  // namespace

FileSystem* FileSystem::Default() {
  static FileSystem* const fs = new PosixFileSystem;
  return fs;
}

absl::Status WriteFileAtomically(FileSystem* fs, const std::string& path,
                                 std::string_view contents) {
  const std::string tmp = absl::StrCat(path, ".tmp");
  auto write_temp = [&]() -> absl::Status {
    RDF_ASSIGN_OR_RETURN(auto file, fs->OpenWritable(tmp, /*create=*/true));
    RDF_RETURN_IF_ERROR(file->Truncate(0));  // a stale temp may be longer
    RDF_RETURN_IF_ERROR(file->Write(0, contents));
    RDF_RETURN_IF_ERROR(file->Sync());
    return file->Close();
  };
  absl::Status s = write_temp();
  if (s.ok()) s = fs->Rename(tmp, path);
  if (!s.ok()) {
    fs->Remove(tmp).IgnoreError();
    return s;
  }
  return fs->SyncDir(DirName(path));
}

absl::StatusOr<std::string> ReadFileToString(FileSystem* fs,
                                             const std::string& path) {
  RDF_ASSIGN_OR_RETURN(auto file, fs->OpenReadable(path));
  RDF_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  std::string out(size, '\0');
  RDF_ASSIGN_OR_RETURN(size_t n, file->Read(0, size, out.data()));
  out.resize(n);
  return out;
}

std::string JoinPath(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  std::string out(a);
  if (a.back() != '/') out.push_back('/');
  out.append(b);
  return out;
}

std::string DirName(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  while (slash > 0 && path[slash - 1] == '/') --slash;
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

}  // namespace rdf
