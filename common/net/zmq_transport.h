// The audit session's Transport over ZeroMQ with CURVE (docs/protocol.md,
// docs/security.md). Every libzmq call of the session, and every
// zmq::error_t it throws, stays in zmq_transport.cc: callers see Status.
//
//   Listen:  a ROUTER, CURVE server, bound to `endpoint`, with a ZAP handler
//            (common/net/zap_handler.h) started before the bind that admits
//            only `allowed_keys`. Each message arrives as [routing id][body]
//            (extra frames are read and dropped), or, with request_envelope,
//            as a REQ client's [routing id][empty][body], and replies go out
//            the same way. (The receiver; the monitor's control port.)
//   Connect: a DEALER, CURVE client, connecting to `endpoint` (libzmq
//            reconnects by itself, except after a failed handshake: see
//            LinkEvents). A socket monitor reports failed handshakes and
//            disconnections. (The extractor.)
//
// Callbacks run on the ZAP handler's or the socket monitor's thread: keep
// them short and thread-safe (logging an event is fine).
#ifndef RDF_COMMON_NET_ZMQ_TRANSPORT_H_
#define RDF_COMMON_NET_ZMQ_TRANSPORT_H_

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "common/net/transport.h"

namespace rdf::net {

struct ZmqListenOptions {
  std::string endpoint;      // "tcp://host:port"
  std::string secret_key;    // own CURVE secret key (Z85)
  std::set<std::string> allowed_keys;  // client public keys (Z85) ZAP admits
  std::string zap_domain;
  // libzmq drops a peer sending a message larger than this (0: no limit).
  int64_t max_message_bytes = 0;
  int rcvhwm = 0;            // messages a peer can make us queue; 0: libzmq's
  int sndhwm = 0;            // 0: libzmq's
  bool heartbeats = false;   // ZMTP heartbeats every 1 s, a peer silent 5 s is dropped
  bool request_envelope = false;  // clients are REQ sockets (see above)
  // ZAP refused a client key.
  std::function<void(const std::string& key, const std::string& address)> on_key_refused;
  // A handshake failed before ZAP (a client without CURVE, a bad server key):
  // `reason` is curve::MonitorEventName(event), `value` its detail. Set, it
  // starts a socket monitor (common/net/socket_monitor.h).
  std::function<void(const std::string& address, const std::string& reason, int value)>
      on_handshake_failed;
};

struct CurveClientKeys {
  std::string server_key;    // the server's CURVE public key (Z85)
  std::string public_key;    // own key pair (Z85)
  std::string secret_key;
};

struct ZmqConnectOptions {
  std::string endpoint;      // "tcp://host:port"
  // Called for every connection (Connect and each Reconnect), so keys fixed
  // on disk after a refused handshake are used by the next one. Its error
  // is Connect's or Reconnect's.
  std::function<absl::StatusOr<CurveClientKeys>()> keys;
  int sndhwm = 1000;         // messages queued before Send says kUnavailable
};

class ZmqTransport : public Transport {
 public:
  // kUnavailable naming the endpoint when the socket cannot be made or bound
  // (e.g. the port is taken); the ZAP handler's and monitor's errors as theirs.
  static absl::StatusOr<std::unique_ptr<ZmqTransport>> Listen(ZmqListenOptions options);
  // kUnavailable naming the endpoint when the socket cannot be made.
  static absl::StatusOr<std::unique_ptr<ZmqTransport>> Connect(ZmqConnectOptions options);
  ~ZmqTransport() override;

  absl::Status Send(absl::string_view peer, absl::string_view body) override;
  absl::StatusOr<std::optional<Message>> Recv(absl::Duration timeout) override;
  LinkEvents TakeLinkEvents() override;
  absl::Status Reconnect() override;

  struct Impl;

 private:
  explicit ZmqTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rdf::net

#endif  // RDF_COMMON_NET_ZMQ_TRANSPORT_H_
