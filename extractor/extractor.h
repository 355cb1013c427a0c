// The extractor (primary node, one per audit trail): tails tmf's audit
// trail, never past its durable end, keeps only what the configuration
// protects (outcomes, DDL and control records always go), and ships numbered
// batches to the receiver with a window of unacknowledged batches in flight.
// It keeps no restart state: on every start and reconnect it asks the
// receiver where to start. It writes the receiver's acknowledged save point
// to the primary's pin file, so tmf keeps the audit not yet safe on the
// backup. See docs/protocol.md. Batching is extractor/batcher.h; the
// socket is behind net::Transport (common/net/transport.h).
#ifndef RDF_EXTRACTOR_EXTRACTOR_H_
#define RDF_EXTRACTOR_EXTRACTOR_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/base/file_system.h"
#include "common/config/config.h"
#include "common/net/transport.h"

namespace rdf::extractor {

struct ExtractorOptions {
  const config::Config* config = nullptr;  // not owned
  std::string node;                        // the PRIMARY node
  FileSystem* fs = FileSystem::Default();
  Clock* clock = Clock::Real();
  // The audit session's transport (not owned; outlives the extractor).
  // Null: a net::ZmqTransport connecting to the backup's audit port with
  // CURVE. Tests pass an in-memory one (common/testing/mem_transport.h).
  net::Transport* transport = nullptr;
};

class Extractor {
 public:
  // Takes the process lock, opens the event log, connects (asynchronously)
  // to the receiver.
  static absl::StatusOr<std::unique_ptr<Extractor>> Open(const ExtractorOptions& options);
  ~Extractor();
  // Ships until *stop becomes true. Damage in the audit trail stops shipping
  // at the damaged record (ERROR event, state DAMAGED) but not the process,
  // so it is visible in status rather than a crash loop.
  absl::Status Run(const std::atomic<bool>* stop);

  struct Impl;

 private:
  explicit Extractor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rdf::extractor

#endif  // RDF_EXTRACTOR_EXTRACTOR_H_
