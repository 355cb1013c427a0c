// Turns a ZeroMQ socket's monitor events (zmq_socket_monitor: connects,
// disconnects, handshake failures) into callbacks, so a process can log
// them as EMS events (e.g. the extractor's 942 "authentication failed", the
// receiver's 950 "sender refused").
//
//   RDF_ASSIGN_OR_RETURN(auto monitor, SocketMonitor::Start(
//       ctx, socket, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED |
//       ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, [](int event, int value, const std::string& addr) {
//         ... MonitorEventName(event) ...
//       }));
//
// Events and their `value` (libzmq 4.3): CONNECTED, ACCEPTED: the new file
// descriptor; CONNECT_DELAYED: the error; CONNECT_RETRIED: the retry
// interval (ms); DISCONNECTED, CLOSED: the file descriptor;
// HANDSHAKE_FAILED_NO_DETAIL: errno; HANDSHAKE_FAILED_PROTOCOL: a
// ZMQ_PROTOCOL_ERROR_* code (e.g. a client without CURVE talking to a CURVE
// server: ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH); HANDSHAKE_FAILED_AUTH:
// the ZAP status code (400 for a refused key); HANDSHAKE_SUCCEEDED: 0.
// `address` is the endpoint ("tcp://127.0.0.1:17420").
//
// Threads. zmq_socket_monitor binds a PAIR socket; this class connects its
// own PAIR to it and reads it on a thread of its own, where the callback
// runs (keep it short and thread-safe). The monitored socket is touched only
// by Start, which must therefore run on the thread that currently owns that
// socket; afterwards the monitor never uses it again.
//
// Lifetime. The destructor stops the thread (within about 100 ms) and closes
// the PAIR socket; it may run before or after the monitored socket is
// closed. Closing the monitored socket delivers MONITOR_STOPPED (when
// requested in `events`) and ends the thread. Destroy the monitor before its
// context is closed; a context shutdown (ETERM) also ends the thread.
// Starting a second monitor on the same socket replaces the first (libzmq
// keeps one monitor per socket); the first then sees no more events.
#ifndef RDF_COMMON_NET_SOCKET_MONITOR_H_
#define RDF_COMMON_NET_SOCKET_MONITOR_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "absl/status/statusor.h"

namespace rdf::curve {

// "CONNECTED", "HANDSHAKE_FAILED_AUTH", ... (the ZMQ_EVENT_ name without its
// prefix); "EVENT_0x<hex>" for an unknown value.
std::string MonitorEventName(int event);

// The value of a HANDSHAKE_FAILED_PROTOCOL event as text: "MECHANISM_MISMATCH",
// "CRYPTOGRAPHIC", "ZAP_BAD_VERSION", ... (the ZMQ_PROTOCOL_ERROR_ name
// without its prefix, "ZMTP_" dropped too); "0x<hex>" for an unknown value.
std::string ProtocolErrorName(int value);

class SocketMonitor {
 public:
  using Callback = std::function<void(int event, int value, const std::string& address)>;

  // Starts monitoring `socket` for `events` (a mask of ZMQ_EVENT_*; 0 means
  // ZMQ_EVENT_ALL) on a unique inproc endpoint of `context`.
  // Errors: kInvalidArgument when `callback` is empty or the socket cannot
  // be monitored; kInternal for other libzmq failures.
  // REQUIRES: called on the thread that owns `socket`; `socket` belongs to
  // `context`; `context` outlives the monitor.
  static absl::StatusOr<std::unique_ptr<SocketMonitor>> Start(zmq::context_t& context,
                                                              zmq::socket_ref socket, int events,
                                                              Callback callback);
  ~SocketMonitor();

  SocketMonitor(const SocketMonitor&) = delete;
  SocketMonitor& operator=(const SocketMonitor&) = delete;

  // The inproc endpoint libzmq publishes the events on.
  const std::string& endpoint() const { return endpoint_; }

 private:
  SocketMonitor(void* pair, std::string endpoint, Callback callback);
  void Run();

  void* const pair_;  // ZMQ_PAIR; the monitor thread's once it runs
  const std::string endpoint_;
  const Callback callback_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace rdf::curve

#endif  // RDF_COMMON_NET_SOCKET_MONITOR_H_
