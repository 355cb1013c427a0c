// The client side of the control protocol (proto/control.proto): one
// request to a node's monitor on its control_port, CURVE-authenticated.
// rdfcom's key pair towards a node is, in this order: the key file given to
// SetClientKeyFile (rdfcom --key-file); the first configured operator's
// key_file it can read; that node's own key file; the first node key file it
// can read. A monitor asking its peer uses its own node's keys. The monitor
// admits the configured nodes' and operators' keys, and lets only operators
// (or, without operators, the node's own key) change its state
// (monitor/control_access.h, docs/security.md).
#ifndef RDF_COMMON_NET_CONTROL_CLIENT_H_
#define RDF_COMMON_NET_CONTROL_CLIENT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config/config.h"
#include "common/net/curve_keys.h"
#include "control.pb.h"

namespace rdf::control {

// How rdfcom reaches a monitor; tests replace it.
using ControlCall = std::function<absl::StatusOr<proto::ControlReply>(
    const proto::NodeConfig&, const proto::ControlRequest&)>;

// Sends `request` (version and operator are filled in) to `node`'s monitor
// and waits up to `timeout` for the reply.
//   kUnavailable      no reply in time: the message names the node, the
//                     endpoint and what to check;
//   kFailedPrecondition the monitor refused (its reason), or no key file of
//                     the configuration is readable here;
//   kDataLoss         a reply that does not parse.
// `own`: the caller's key pair; null: the first readable node key file.
absl::StatusOr<proto::ControlReply> CallMonitor(const config::Config& config,
                                                const proto::NodeConfig& node,
                                                proto::ControlRequest request,
                                                absl::Duration timeout,
                                                const curve::KeyPair* own = nullptr);

// A connection to one node's monitor kept across requests, for commands that
// send many (rdfcom initialize relays thousands of chunks): CallMonitor pays
// a CURVE handshake per request. Errors as CallMonitor; after one that got
// no reply the next Call connects anew. Not thread-safe. Not owned: config
// and node outlive it.
class MonitorChannel {
 public:
  MonitorChannel(const config::Config& config, const proto::NodeConfig& node,
                 absl::Duration timeout, const curve::KeyPair* own = nullptr);
  ~MonitorChannel();
  absl::StatusOr<proto::ControlReply> Call(proto::ControlRequest request);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// A ControlCall over one MonitorChannel per node, each with `timeout`.
ControlCall ChannelCall(const config::Config& config, absl::Duration timeout);

// A ControlCall over CallMonitor with `timeout`.
ControlCall NetworkCall(const config::Config& config, absl::Duration timeout);

// Makes every later call without an explicit key pair use the key pair in
// `path` (an operator's key file; empty: choose per node, as above). Call
// once, before any call (not thread-safe).
void SetClientKeyFile(std::string path);

// "user@host" of whoever runs rdfcom (for event 835).
std::string OperatorName();

}  // namespace rdf::control

#endif  // RDF_COMMON_NET_CONTROL_CLIENT_H_
