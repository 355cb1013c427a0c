// A ZAP (ZeroMQ Authentication Protocol 1.0, RFC 27) handler that admits
// only listed CURVE client keys (docs/security.md).
//
// CURVE alone admits any client that knows the server's public key. libzmq
// asks a ZAP handler, bound at inproc://zeromq.zap.01 in the server socket's
// context, to accept or refuse each CURVE handshake; this class is that
// handler: mechanism "CURVE" and a client public key in the allowed set ->
// status "200" (with the client key, Z85, as the User-Id, readable from each
// received message as zmq_msg_gets(msg, "User-Id")); anything else -> "400"
// with status text "unknown client key" (or "mechanism not allowed").
//
// Use (the receiver):
//   zmq::context_t ctx;
//   RDF_ASSIGN_OR_RETURN(auto zap, curve::ZapHandler::Start(ctx, {extractor_key}, on_decision));
//   zmq::socket_t server(ctx, zmq::socket_type::router);
//   server.set(zmq::sockopt::zap_domain, "rdf");   // see below
//   server.set(zmq::sockopt::curve_server, true);
//   server.set(zmq::sockopt::curve_secretkey, own.secret_key);
//   server.bind(...);
//
// The zap_domain. libzmq 4.3.4 consults the handler for CURVE whether or not
// a domain is set, but ZMQ_ZAP_ENFORCE_DOMAIN (which would make a missing
// handler an error instead of "admit everyone") is draft API and not
// available here. The receiver sets zap_domain "rdf" on its server socket
// anyway, so requests are recognisable, and starts this handler before it
// binds: with no handler bound, libzmq admits every client that knows the
// server key. The handler does not check the domain.
//
// Threads. Start binds the ZAP socket on the calling thread, then serves it
// on a thread of its own; the socket is used by that thread only afterwards.
// The callback runs on that thread, once per decision, and must not block for
// long (handshakes wait for it); it must be safe to call concurrently with
// the caller's threads. SetAllowedKeys and the counters may be called from
// any thread.
//
// Lifetime. The destructor stops the thread (within about 100 ms: the thread
// polls with a timeout) and closes the socket. Destroy the handler before the
// context is closed (zmq_ctx_term waits for open sockets); if the context is
// shut down first (zmq::context_t::shutdown), the thread notices (ETERM),
// closes its socket and ends, and the destructor still returns.
#ifndef RDF_COMMON_NET_ZAP_HANDLER_H_
#define RDF_COMMON_NET_ZAP_HANDLER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace rdf::curve {

// The ZAP endpoint libzmq asks (fixed by RFC 27).
inline constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";
// The zap_domain rdf's receiver sets on its CURVE server socket.
inline constexpr char kZapDomain[] = "rdf";

class ZapHandler {
 public:
  // One decision: the client's public key (Z85; empty when the mechanism is
  // not CURVE), the peer's address as libzmq gives it (the IP address for
  // TCP), and whether it was admitted.
  using Callback = std::function<void(const std::string& client_key_z85,
                                      const std::string& peer_address, bool admitted)>;

  // Binds kZapEndpoint in `context` and starts serving it. `allowed_keys`
  // are Z85 public keys (40 characters); `callback` may be empty.
  // Errors: kAlreadyExists when another ZAP handler is bound in `context`;
  // kInvalidArgument when an allowed key is not a Z85 key; kInternal for
  // other libzmq failures.
  // REQUIRES: `context` outlives the handler.
  static absl::StatusOr<std::unique_ptr<ZapHandler>> Start(zmq::context_t& context,
                                                           std::set<std::string> allowed_keys,
                                                           Callback callback = nullptr);
  ~ZapHandler();

  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  // Replaces the allowed keys; handshakes decided after it returns use the
  // new set (established connections are not dropped). kInvalidArgument,
  // and no change, when a key is not a Z85 key.
  absl::Status SetAllowedKeys(std::set<std::string> allowed_keys);
  std::set<std::string> allowed_keys() const;

  // Decisions made since Start.
  uint64_t admitted() const { return admitted_.load(std::memory_order_relaxed); }
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }

 private:
  ZapHandler(void* socket, std::set<std::string> allowed_keys, Callback callback);
  void Run();
  // Answers one well-formed request (frames as a ROUTER receives them).
  void ServeRequest(const std::vector<std::string>& request);
  void Decide(const std::vector<std::string>& request, const std::string& key,
              const std::string& address, bool admitted, const char* refusal);
  bool IsAllowed(const std::string& key) const;

  void* const socket_;  // ZMQ_ROUTER; the serving thread's once it runs
  const Callback callback_;
  mutable absl::Mutex mu_;
  std::set<std::string> allowed_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> admitted_{0};
  std::atomic<uint64_t> refused_{0};
  std::thread thread_;
};

}  // namespace rdf::curve

#endif  // RDF_COMMON_NET_ZAP_HANDLER_H_
