// The network seam of the audit session (extractor <-> receiver) and of the
// monitors' control port: one message in, one message out, connection
// news, and nothing of ZeroMQ.
// ZmqTransport (common/net/zmq_transport.h) is the real one, with CURVE and
// ZAP; MemTransportPair (common/testing/mem_transport.h) joins two ends in
// memory so the extractor and the receiver can be tested in-process.
//
// Messages are whole byte strings (a proto::WireMessage encoded by
// common/wire/wire.h); a transport never splits, merges or reorders the
// messages of one connection, but may lose them when the connection drops:
// the protocol recovers (docs/protocol.md: Hello again, resend).
//
// Peers. A listening transport (the receiver) serves connecting ones and
// names each by a routing id, Message::peer, which Send takes back. A
// connecting transport (the extractor) has one peer, named "".
//
// Threads. One thread uses a transport at a time; TakeLinkEvents may report
// what other threads of the transport noticed.
#ifndef RDF_COMMON_NET_TRANSPORT_H_
#define RDF_COMMON_NET_TRANSPORT_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace rdf::net {

struct Message {
  std::string peer;  // routing id of the sender; "" on a connecting transport
  std::string body;
  // Listening: the sender's public key as authentication admitted it (CURVE
  // and ZAP: Z85); "" when unknown.
  std::string sender_key;
};

// What happened to a connecting transport's connection since the last
// TakeLinkEvents.
struct LinkEvents {
  // The peer refused our keys (CURVE/ZAP). The transport does not try
  // again by itself: call Reconnect, after a pause (the keys may be fixed).
  bool auth_failed = false;
  // The connection dropped; what was in flight may be lost. The transport
  // connects again by itself.
  bool disconnected = false;
};

class Transport {
 public:
  virtual ~Transport();

  // Queues `body` for `peer` without blocking.
  //   kUnavailable  not queued: no such peer (it left), its queue is full,
  //                 or no connection. The protocol recovers from a lost
  //                 message, so callers may drop this error.
  virtual absl::Status Send(absl::string_view peer, absl::string_view body) = 0;

  // Waits up to `timeout` (zero: only looks) for the next message.
  //   nullopt       nothing came in time, or a signal cut the wait short;
  //   kInternal     the transport is broken (the process should end).
  virtual absl::StatusOr<std::optional<Message>> Recv(absl::Duration timeout) = 0;

  // Returns and clears the connection news (always none when listening).
  virtual LinkEvents TakeLinkEvents() = 0;

  // Connecting transport: drops the connection, with what it holds, and
  // connects anew. kUnavailable when a new one cannot be made (tried again
  // on the next call). Listening transport: nothing.
  virtual absl::Status Reconnect() = 0;
};

}  // namespace rdf::net

#endif  // RDF_COMMON_NET_TRANSPORT_H_
