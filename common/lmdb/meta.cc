#include "common/lmdb/meta.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace rdf::lmdb {
namespace {

template <typename T>
T Load(const std::string& page, size_t offset) {
  T v;
  std::memcpy(&v, page.data() + offset, sizeof v);
  return v;
}

// `n` bytes at `at` of `fd`; shorter when the file ends first.
absl::StatusOr<std::string> ReadAt(int fd, size_t n, off_t at, const std::string& path) {
  std::string buf(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, buf.data() + got, n - got, at + static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoToStatus(errno, absl::StrCat("read meta page of ", path));
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  buf.resize(got);
  return buf;
}

}  // namespace

absl::StatusOr<uint64_t> MetaTxnid(const std::string& page, const std::string& path) {
  if (page.size() < kMetaBytes || Load<uint32_t>(page, kMetaOffset) != kMetaMagic ||
      Load<uint32_t>(page, kMetaOffset + 4) != kMetaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": not an LMDB 0.9 meta page (magic or version differ)"));
  }
  return Load<uint64_t>(page, kTxnidOffset);
}

uint64_t MetaMapSize(const std::string& page) { return Load<uint64_t>(page, kMapSizeOffset); }
uint64_t MetaLastPage(const std::string& page) { return Load<uint64_t>(page, kLastPgOffset); }

absl::StatusOr<std::optional<NewestMeta>> ReadNewestMeta(const std::string& data_path) {
  int fd = open(data_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<NewestMeta>();
    return ErrnoToStatus(errno, absl::StrCat("open ", data_path));
  }
  absl::Cleanup close_fd = [fd] { close(fd); };
  // Slot 0 names the page size, which places slot 1.
  RDF_ASSIGN_OR_RETURN(std::string first, ReadAt(fd, kMetaBytes, 0, data_path));
  if (first.size() < kMetaBytes) return std::optional<NewestMeta>();
  std::optional<NewestMeta> newest;
  absl::StatusOr<uint64_t> t0 = MetaTxnid(first, data_path);
  uint32_t psize = 0;
  if (t0.ok()) {
    psize = Load<uint32_t>(first, kPageSizeOffset);
    newest = NewestMeta{*t0, MetaMapSize(first), psize};
  }
  // Without a valid slot 0 the page size is unknown: try the usual one.
  if (psize == 0) psize = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  RDF_ASSIGN_OR_RETURN(std::string second, ReadAt(fd, kMetaBytes, psize, data_path));
  absl::StatusOr<uint64_t> t1 = MetaTxnid(second, data_path);
  if (t1.ok() && (!newest.has_value() || *t1 > newest->txnid)) {
    newest = NewestMeta{*t1, MetaMapSize(second), Load<uint32_t>(second, kPageSizeOffset)};
  }
  if (!newest.has_value()) {
    return absl::DataLossError(absl::StrCat(data_path, ": neither meta page is valid"));
  }
  return newest;
}

}  // namespace rdf::lmdb
