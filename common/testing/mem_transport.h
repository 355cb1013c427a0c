// Two Transport ends joined in memory, for in-process tests of the audit
// session (receiver_test.cc, extractor_test.cc): `listener()` plays the
// receiver's side, `connector()` the extractor's. What one end sends the
// other receives, in order, with the connector named by a routing id
// ("conn-1", "conn-2", ... one per connection).
//
//   MemTransportPair link;
//   ReceiverOptions o; o.transport = link.TakeListener();
//   link.connector()->Send("", wire::Encode(hello));
//   auto reply = link.connector()->Recv(absl::Seconds(5));
//
// Faults: Disconnect() loses what is in flight both ways and reports
// `disconnected` to the connector; FailAuth() reports `auth_failed`.
// A Reconnect() of the connector starts a new connection (a new routing
// id) and loses what was in flight. Thread-safe: each end may be used on
// its own thread, the fault calls on any.
#ifndef RDF_COMMON_TESTING_MEM_TRANSPORT_H_
#define RDF_COMMON_TESTING_MEM_TRANSPORT_H_

#include <deque>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/net/transport.h"

namespace rdf::testing {

class MemTransportPair {
 public:
  MemTransportPair();
  ~MemTransportPair();

  // The ends; owned by the pair until taken (then the taker owns it, and
  // the pair must outlive it).
  net::Transport* listener() { return listener_ptr_; }
  net::Transport* connector() { return connector_ptr_; }
  std::unique_ptr<net::Transport> TakeListener() { return std::move(listener_); }
  std::unique_ptr<net::Transport> TakeConnector() { return std::move(connector_); }

  void Disconnect();
  void FailAuth();
  // How many times the connector called Reconnect.
  int reconnects();
  // Messages waiting for the listener / the connector.
  size_t queued_to_listener();
  size_t queued_to_connector();

  struct Shared {
    absl::Mutex mu;
    std::deque<net::Message> to_listener ABSL_GUARDED_BY(mu);
    std::deque<std::string> to_connector ABSL_GUARDED_BY(mu);
    int connection ABSL_GUARDED_BY(mu) = 1;
    int reconnects ABSL_GUARDED_BY(mu) = 0;
    net::LinkEvents events ABSL_GUARDED_BY(mu);
  };

 private:
  std::shared_ptr<Shared> shared_;
  std::unique_ptr<net::Transport> listener_, connector_;
  net::Transport* listener_ptr_;
  net::Transport* connector_ptr_;
};

}  // namespace rdf::testing

#endif  // RDF_COMMON_TESTING_MEM_TRANSPORT_H_
