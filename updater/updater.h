// The updater (backup node, one per protected volume): applies its volume's
// image trail to the backup volume (REDO), never past the receiver's save
// point, in batches: one LMDB write transaction holds a batch's changes and
// the new restart point (image trail position and ASN), so every record is
// applied exactly once across any crash.
//
// An insert of an existing key (error 10) or an update or delete of a
// missing key (error 11) is handled by the configured policy (skip, or
// stop) with an event and a line in <data_dir>/exceptions/<VOLUME>.jsonl.
//
// Takeover (docs/takeover.md): REDO up to the receiver's final save point,
// then UNDO of the transactions without an outcome, newest first, reading
// the trail backwards, leaving alone the records REDO skipped (kept in the
// bookkeeping database __skipped); restartable.
//
// A full LMDB map is grown and the write retried in place, on every write
// path (REDO, DDL, UNDO); the grown size survives restarts (lmdb::Env).
#ifndef RDF_UPDATER_UPDATER_H_
#define RDF_UPDATER_UPDATER_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/base/file_system.h"
#include "common/config/config.h"
#include "takeover.pb.h"

namespace rdf::updater {

struct UpdaterOptions {
  const config::Config* config = nullptr;  // not owned
  std::string node;                        // the BACKUP node
  std::string volume;                      // "$DATA01"
  FileSystem* fs = FileSystem::Default();
  Clock* clock = Clock::Real();
};

class Updater {
 public:
  static absl::StatusOr<std::unique_ptr<Updater>> Open(const UpdaterOptions& options);
  ~Updater();
  // Applies until *stop; storage errors are retried from the restart point
  // with backoff (state RETRYING), never skipped.
  absl::Status Run(const std::atomic<bool>* stop);
  // Takeover: applies everything up to the receiver's final save point,
  // undoes the records of its open transactions, records the volume as done
  // for the epoch and writes takeover/<VOLUME>.json. Already done for this
  // epoch: only rewrites the result. kFailedPrecondition when no takeover
  // was issued or the final save point is not fixed yet; kCancelled on
  // *stop (a later call resumes). REDO that cannot progress fails instead
  // of retrying for ever: kDataLoss at once for a damaged trail, any other
  // error once it lasted updater.takeover_retry_ms (event 972); a later
  // call resumes from the restart point.
  absl::StatusOr<proto::VolumeTakeoverResult> Takeover(const std::atomic<bool>* stop);

  struct Impl;

 private:
  explicit Updater(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rdf::updater

#endif  // RDF_UPDATER_UPDATER_H_
