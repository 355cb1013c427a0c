// Publishing a trail's durable end to readers, in this process or others.
//
// The writer publishes after every sync; readers never read past what was
// published, so nothing that a power loss could take back is ever shipped or
// applied. Across processes the end lives in a small shared file
// "<dir>/<trail>.end" mapped by writer and readers: a seqlock over the
// fields plus a futex word, so a reader blocked in WaitBeyond wakes as soon
// as the writer syncs, without polling. The file is never fsynced: after a
// power loss it may show an older end than the trail holds, never a newer
// one (the writer publishes only after its data is durable).
#ifndef RDF_COMMON_TRAIL_DURABLE_END_H_
#define RDF_COMMON_TRAIL_DURABLE_END_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/trail/format.h"

namespace rdf::trail {

// Receives the durable end from a writer. Thread-safe.
class EndPublisher {
 public:
  virtual ~EndPublisher() = default;
  virtual void Publish(const End& end) = 0;
};

// Where a reader learns how far it may read. Thread-safe.
class EndSource {
 public:
  virtual ~EndSource() = default;
  virtual End Get() = 0;
  // True when Get() was published since this machine last booted. Then it
  // is exactly the writer's last published end (the end lives in memory
  // that outlives the writer's process, not a power loss), and a writer's
  // Open may cut whatever lies past it (see trail_writer.h). False when it
  // cannot tell: the end may be older than what was published.
  virtual bool PublishedThisBoot() { return false; }
  // Returns when the published ASN exceeds `asn` or `timeout` passes,
  // whichever is first (spurious early returns are allowed).
  virtual void WaitBeyond(uint64_t asn, absl::Duration timeout) = 0;
};

// An end shared inside one process (tests; a writer and readers on threads).
class LocalEnd : public EndPublisher, public EndSource {
 public:
  void Publish(const End& end) override;
  End Get() override;
  void WaitBeyond(uint64_t asn, absl::Duration timeout) override;
  bool PublishedThisBoot() override;
  // Tests: a power loss and reboot. Get() keeps its value (an end file that
  // survived) but is no longer this boot's.
  void SimulateReboot();

 private:
  absl::Mutex mu_;
  End end_ ABSL_GUARDED_BY(mu_);
  bool this_boot_ ABSL_GUARDED_BY(mu_) = false;
};

// The shared-file end described above. A writer opens it with Create (the
// file is made if missing); readers with OpenReadOnly (kNotFound while no
// writer has ever created it).
class SharedEnd : public EndPublisher, public EndSource {
 public:
  static absl::StatusOr<std::unique_ptr<SharedEnd>> Create(
      const std::string& path);
  static absl::StatusOr<std::unique_ptr<SharedEnd>> OpenReadOnly(
      const std::string& path);
  ~SharedEnd() override;

  // REQUIRES: opened with Create.
  void Publish(const End& end) override;
  End Get() override;
  void WaitBeyond(uint64_t asn, absl::Duration timeout) override;
  // The file records the boot id (/proc/sys/kernel/random/boot_id) of its
  // last Publish, written after the end itself: a writer killed in between
  // leaves the older boot id, which makes the end untrusted, never trusted
  // wrongly. False when the boot id cannot be read.
  bool PublishedThisBoot() override;

  struct Shared;  // the mapped layout

 private:
  SharedEnd(Shared* map, bool writable) : map_(map), writable_(writable) {}
  Shared* map_;
  bool writable_;
};

// "<dir>/<trail>.end"
std::string EndFilePath(const std::string& dir, const std::string& trail);

}  // namespace rdf::trail

#endif  // RDF_COMMON_TRAIL_DURABLE_END_H_
