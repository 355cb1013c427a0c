// A small byte string shared between one writer process and reader
// processes through a mapped file, with change notification: the receiver
// publishes each save point this way to the updaters. Never fsynced: the
// durable copy lives elsewhere (the save point frame in the MIT); this is
// the fast path. Two slots each under a seqlock plus the index of the newest
// complete slot, so a writer killed mid-write never leaves readers stuck.
#ifndef RDF_COMMON_BASE_SHARED_BLOB_H_
#define RDF_COMMON_BASE_SHARED_BLOB_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace rdf {

class SharedBlob {
 public:
  static constexpr size_t kCapacity = 60 * 1024;  // bytes per value

  // Writer: creates (or reuses) the file at `path`.
  static absl::StatusOr<std::unique_ptr<SharedBlob>> Create(const std::string& path);
  // Reader: kNotFound until a writer has created the file.
  static absl::StatusOr<std::unique_ptr<SharedBlob>> OpenReadOnly(const std::string& path);
  ~SharedBlob();

  // REQUIRES: opened with Create; data.size() <= kCapacity.
  absl::Status Write(absl::string_view data);
  // The newest value and its generation (0 and "" before the first Write).
  std::string Read(uint64_t* generation = nullptr) const;
  // Returns when the generation differs from `known` or after `timeout`.
  void WaitChange(uint64_t known, absl::Duration timeout) const;

  struct Layout;

 private:
  SharedBlob(Layout* map, bool writable) : map_(map), writable_(writable) {}
  Layout* map_;
  bool writable_;
};

}  // namespace rdf

#endif  // RDF_COMMON_BASE_SHARED_BLOB_H_
