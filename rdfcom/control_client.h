// rdfcom's side of the control protocol (proto/control.proto): one request
// to a node's monitor on its control_port, CURVE-authenticated. rdfcom uses
// the key pair of the first configured node whose key file it can read (on
// a node's own machine that is the node's key; on loopback, the first
// node's), and the monitor admits the configured nodes' public keys.
#ifndef RDF_RDFCOM_CONTROL_CLIENT_H_
#define RDF_RDFCOM_CONTROL_CLIENT_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "control.pb.h"

namespace rdf::rdfcom {

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
absl::StatusOr<proto::ControlReply> CallMonitor(const config::Config& config,
                                                const proto::NodeConfig& node,
                                                proto::ControlRequest request,
                                                absl::Duration timeout);

// A ControlCall over CallMonitor with `timeout`.
ControlCall NetworkCall(const config::Config& config, absl::Duration timeout);

// "user@host" of whoever runs rdfcom (for event 835).
std::string OperatorName();

}  // namespace rdf::rdfcom

#endif  // RDF_RDFCOM_CONTROL_CLIENT_H_
