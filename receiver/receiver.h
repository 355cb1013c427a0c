// The receiver (backup node, one per extractor): accepts numbered batches
// from the extractor over ZeroMQ (ROUTER, CURVE server, ZAP admitting only
// the configured extractor key), writes them into the image trails, makes
// them durable with a save point and acknowledges. See docs/protocol.md.
// The socket is behind net::Transport (common/net/transport.h).
#ifndef RDF_RECEIVER_RECEIVER_H_
#define RDF_RECEIVER_RECEIVER_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/base/file_system.h"
#include "common/config/config.h"
#include "common/net/transport.h"

namespace rdf::receiver {

struct ReceiverOptions {
  const config::Config* config = nullptr;  // not owned
  std::string node;                        // a BACKUP node
  FileSystem* fs = FileSystem::Default();
  Clock* clock = Clock::Real();
  // Takeover: open (cutting the trails back to the last save point), fix the
  // final save point for the takeover epoch, and return from Run without
  // listening. Refused when no takeover epoch exists.
  bool finalize_only = false;
  // The audit session's transport (not owned; outlives the receiver). Null:
  // a net::ZmqTransport listening on the node's audit port with CURVE, its
  // ZAP handler admitting only the primary's key. Tests pass an in-memory
  // one (common/testing/mem_transport.h).
  net::Transport* transport = nullptr;
};

class Receiver {
 public:
  // Takes the process lock, opens the event log and the image trails
  // (cutting them back to the last save point), binds the audit port.
  static absl::StatusOr<std::unique_ptr<Receiver>> Open(const ReceiverOptions& options);
  ~Receiver();
  // Serves until *stop becomes true (SIGTERM), then takes a last save point.
  // Once a takeover epoch exists (common/state/takeover_state.h) it refuses the
  // old primary and records its final save point, carrying the epoch.
  absl::Status Run(const std::atomic<bool>* stop);

  struct Impl;

 private:
  explicit Receiver(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rdf::receiver

#endif  // RDF_RECEIVER_RECEIVER_H_
