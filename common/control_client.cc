#include "common/control_client.h"

#include <pwd.h>
#include <unistd.h>

#include <zmq.hpp>

#include "absl/strings/str_cat.h"
#include "common/curve_keys.h"
#include "common/wire.h"

namespace rdf::control {
namespace {

absl::StatusOr<curve::KeyPair> OperatorKeys(const config::Config& config) {
  std::string problems;
  for (const proto::NodeConfig& n : config.proto.nodes()) {
    absl::StatusOr<curve::KeyPair> k = curve::ReadKeyFile(n.key_file());
    if (k.ok()) return k;
    absl::StrAppend(&problems, "\n  ", k.status().message());
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "rdfcom needs a node's key file to talk to the monitors, and none is readable here:",
      problems));
}

}  // namespace

std::string OperatorName() {
  const passwd* pw = getpwuid(geteuid());
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return absl::StrCat(pw != nullptr ? pw->pw_name : absl::StrCat(geteuid()), "@", host);
}

absl::StatusOr<proto::ControlReply> CallMonitor(const config::Config& config,
                                                const proto::NodeConfig& node,
                                                proto::ControlRequest request,
                                                absl::Duration timeout,
                                                const curve::KeyPair* own_keys) {
  if (node.control_port() == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "node '", node.name(), "' has no control_port in ", config.path));
  }
  absl::StatusOr<curve::KeyPair> own =
      own_keys != nullptr ? absl::StatusOr<curve::KeyPair>(*own_keys) : OperatorKeys(config);
  if (!own.ok()) return own.status();
  absl::StatusOr<std::string> server_key = curve::PublicKeyOf(config, node);
  if (!server_key.ok()) return server_key.status();
  request.set_version(proto::CONTROL_VERSION_1);
  if (request.operator_().empty()) request.set_operator_(OperatorName());
  const std::string endpoint = wire::Endpoint(node.host(), node.control_port());
  zmq::context_t ctx;
  std::string bytes;
  try {
    zmq::socket_t req(ctx, zmq::socket_type::req);
    req.set(zmq::sockopt::curve_serverkey, *server_key);
    req.set(zmq::sockopt::curve_publickey, own->public_key);
    req.set(zmq::sockopt::curve_secretkey, own->secret_key);
    req.set(zmq::sockopt::linger, 0);
    req.set(zmq::sockopt::rcvtimeo, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
    req.set(zmq::sockopt::sndtimeo, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
    req.connect(endpoint);
    const std::string out = request.SerializeAsString();
    zmq::message_t reply;
    if (!req.send(zmq::buffer(out), zmq::send_flags::none) ||
        !req.recv(reply, zmq::recv_flags::none)) {
      return absl::UnavailableError(absl::StrCat(
          "node '", node.name(), "': no answer from its monitor at ", endpoint, " within ",
          absl::FormatDuration(timeout),
          " (is rdf-monitor running there? do the node keys in the configuration match?)"));
    }
    bytes = reply.to_string();
  } catch (const zmq::error_t& e) {
    return absl::UnavailableError(
        absl::StrCat("node '", node.name(), "': cannot reach ", endpoint, ": ", e.what()));
  }
  proto::ControlReply r;
  if (!r.ParseFromString(bytes)) {
    return absl::DataLossError(
        absl::StrCat("node '", node.name(), "': the monitor's reply does not parse"));
  }
  if (!r.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("node '", node.name(), "': ", r.error()));
  }
  return r;
}

ControlCall NetworkCall(const config::Config& config, absl::Duration timeout) {
  return [&config, timeout](const proto::NodeConfig& node, const proto::ControlRequest& req) {
    return CallMonitor(config, node, req, timeout);
  };
}

}  // namespace rdf::control
