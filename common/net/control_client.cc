#include "common/net/control_client.h"

#include <pwd.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <utility>

#include <zmq.hpp>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/net/curve_keys.h"
#include "common/wire/wire.h"

namespace rdf::control {
namespace {

std::string& KeyFileOverride() {
  static std::string path;
  return path;
}

// The key pair rdfcom uses towards `node` (see SetClientKeyFile).
absl::StatusOr<curve::KeyPair> ClientKeys(const config::Config& config,
                                          const proto::NodeConfig& node) {
  if (!KeyFileOverride().empty()) return curve::ReadKeyFile(KeyFileOverride());
  for (const proto::OperatorConfig& o : config.proto.operators()) {
    if (o.key_file().empty()) continue;
    absl::StatusOr<curve::KeyPair> k = curve::ReadKeyFile(o.key_file());
    if (k.ok()) return k;
  }
  // A node's own key manages that node while no operators are configured
  // (and only reads otherwise): on loopback both nodes' files are here.
  absl::StatusOr<curve::KeyPair> own = curve::ReadKeyFile(node.key_file());
  if (own.ok()) return own;
  std::string problems;
  for (const proto::NodeConfig& n : config.proto.nodes()) {
    absl::StatusOr<curve::KeyPair> k = curve::ReadKeyFile(n.key_file());
    if (k.ok()) return k;
    absl::StrAppend(&problems, "\n  ", k.status().message());
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "rdfcom needs an operator key file (--key-file) or a node's key file to talk to the "
      "monitors, and none is readable here:",
      problems));
}

}  // namespace

void SetClientKeyFile(std::string path) { KeyFileOverride() = std::move(path); }

std::string OperatorName() {
  const passwd* pw = getpwuid(geteuid());
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return absl::StrCat(pw != nullptr ? pw->pw_name : absl::StrCat(geteuid()), "@", host);
}

struct MonitorChannel::Impl {
  const config::Config& config;
  const proto::NodeConfig& node;
  absl::Duration timeout;
  const curve::KeyPair* own_keys;
  zmq::context_t ctx;
  std::unique_ptr<zmq::socket_t> socket;  // null: connect on the next Call
  std::string endpoint;

  absl::Status Connect();
  absl::StatusOr<std::string> Exchange(const std::string& out);
};

absl::Status MonitorChannel::Impl::Connect() {
  if (node.control_port() == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "node '", node.name(), "' has no control_port in ", config.path));
  }
  absl::StatusOr<curve::KeyPair> own =
      own_keys != nullptr ? absl::StatusOr<curve::KeyPair>(*own_keys) : ClientKeys(config, node);
  if (!own.ok()) return own.status();
  absl::StatusOr<std::string> server_key = curve::PublicKeyOf(config, node);
  if (!server_key.ok()) return server_key.status();
  endpoint = wire::Endpoint(node.host(), node.control_port());
  try {
    auto req = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::req);
    req->set(zmq::sockopt::curve_serverkey, *server_key);
    req->set(zmq::sockopt::curve_publickey, own->public_key);
    req->set(zmq::sockopt::curve_secretkey, own->secret_key);
    req->set(zmq::sockopt::linger, 0);
    req->set(zmq::sockopt::rcvtimeo, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
    req->set(zmq::sockopt::sndtimeo, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
    req->connect(endpoint);
    socket = std::move(req);
  } catch (const zmq::error_t& e) {
    return absl::UnavailableError(
        absl::StrCat("node '", node.name(), "': cannot reach ", endpoint, ": ", e.what()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> MonitorChannel::Impl::Exchange(const std::string& out) {
  if (socket == nullptr) RDF_RETURN_IF_ERROR(Connect());
  try {
    zmq::message_t reply;
    if (socket->send(zmq::buffer(out), zmq::send_flags::none) &&
        socket->recv(reply, zmq::recv_flags::none)) {
      return reply.to_string();
    }
  } catch (const zmq::error_t& e) {
    socket.reset();
    return absl::UnavailableError(
        absl::StrCat("node '", node.name(), "': cannot reach ", endpoint, ": ", e.what()));
  }
  socket.reset();  // a REQ socket without its reply takes no next request
  return absl::UnavailableError(absl::StrCat(
      "node '", node.name(), "': no answer from its monitor at ", endpoint, " within ",
      absl::FormatDuration(timeout),
      " (is rdf-monitor running there? do the node keys in the configuration match?)"));
}

MonitorChannel::MonitorChannel(const config::Config& config, const proto::NodeConfig& node,
                               absl::Duration timeout, const curve::KeyPair* own)
    : impl_(new Impl{config, node, timeout, own, zmq::context_t(), nullptr, ""}) {}

MonitorChannel::~MonitorChannel() {
  if (impl_) impl_->socket.reset();
}

absl::StatusOr<proto::ControlReply> MonitorChannel::Call(proto::ControlRequest request) {
  request.set_version(proto::CONTROL_VERSION_1);
  if (request.operator_().empty()) request.set_operator_(OperatorName());
  absl::StatusOr<std::string> bytes = impl_->Exchange(request.SerializeAsString());
  if (!bytes.ok()) return bytes.status();
  const std::string& name = impl_->node.name();
  proto::ControlReply r;
  if (!r.ParseFromString(*bytes)) {
    return absl::DataLossError(
        absl::StrCat("node '", name, "': the monitor's reply does not parse"));
  }
  if (!r.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("node '", name, "': ", r.error()));
  }
  return r;
}

absl::StatusOr<proto::ControlReply> CallMonitor(const config::Config& config,
                                                const proto::NodeConfig& node,
                                                proto::ControlRequest request,
                                                absl::Duration timeout,
                                                const curve::KeyPair* own_keys) {
  return MonitorChannel(config, node, timeout, own_keys).Call(std::move(request));
}

ControlCall ChannelCall(const config::Config& config, absl::Duration timeout) {
  auto channels = std::make_shared<std::map<std::string, std::unique_ptr<MonitorChannel>>>();
  return [&config, timeout, channels](const proto::NodeConfig& node,
                                      const proto::ControlRequest& req) {
    std::unique_ptr<MonitorChannel>& ch = (*channels)[node.name()];
    if (ch == nullptr) ch = std::make_unique<MonitorChannel>(config, node, timeout);
    return ch->Call(req);
  };
}

ControlCall NetworkCall(const config::Config& config, absl::Duration timeout) {
  return [&config, timeout](const proto::NodeConfig& node, const proto::ControlRequest& req) {
    return CallMonitor(config, node, req, timeout);
  };
}

}  // namespace rdf::control
