#include "common/initcopy/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/base/crc32c.h"
#include "common/base/status_macros.h"

namespace rdf::initcopy {

absl::StatusOr<ChunkAction> CheckChunk(uint64_t have, uint64_t offset, std::string_view data,
                                       uint32_t crc) {
  if (data.size() > kMaxChunkBytes) {
    return absl::InvalidArgumentError(absl::StrCat("a chunk of ", data.size(),
                                                   " bytes is over the limit of ",
                                                   kMaxChunkBytes));
  }
  if (crc32c::Value(data.data(), data.size()) != crc) {
    return absl::DataLossError(absl::StrCat("the chunk at offset ", offset, " (", data.size(),
                                            " bytes) does not match its crc32c"));
  }
  if (offset == have) return ChunkAction::kAppend;
  if (offset < have && offset + data.size() == have) return ChunkAction::kDuplicate;
  if (offset > have) {
    return absl::FailedPreconditionError(absl::StrCat(
        "a chunk at offset ", offset, " but the staged file holds ", have,
        " bytes: a chunk is missing"));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "a chunk at offset ", offset, " (", data.size(), " bytes) overlaps the ", have,
      " bytes the staged file holds"));
}

absl::StatusOr<uint64_t> AppendChunk(const std::string& path, uint64_t offset,
                                     std::string_view data, uint32_t crc) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  absl::Cleanup closer = [fd] { close(fd); };
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoToStatus(errno, absl::StrCat("stat ", path));
  const uint64_t have = static_cast<uint64_t>(st.st_size);
  RDF_ASSIGN_OR_RETURN(ChunkAction action, CheckChunk(have, offset, data, crc));
  if (action == ChunkAction::kDuplicate) return have;
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = pwrite(fd, data.data() + done, data.size() - done,
                       static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, absl::StrCat("write ", path));
    done += static_cast<size_t>(n);
  }
  return offset + data.size();
}

absl::StatusOr<std::string> ReadChunk(const std::string& path, uint64_t offset,
                                      uint32_t max_bytes) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  absl::Cleanup closer = [fd] { close(fd); };
  std::string out(std::min(max_bytes, kMaxChunkBytes), '\0');
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, absl::StrCat("read ", path));
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

absl::Status RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return ErrnoToStatus(ec.value(), absl::StrCat("remove ", path));
  return absl::OkStatus();
}

absl::Status SyncFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) return ErrnoToStatus(err, absl::StrCat("fsync ", path));
  return absl::OkStatus();
}

}  // namespace rdf::initcopy
