#include "common/net/zmq_transport.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <utility>
#include <vector>

#include <zmq.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/status_macros.h"
#include "common/net/socket_monitor.h"
#include "common/net/zap_handler.h"

namespace rdf::net {

struct ZmqTransport::Impl {
  // Declared first, destroyed last: the ZAP handler, the monitor and the
  // socket must all be gone before the context closes.
  zmq::context_t ctx{1};
  bool listening = false;
  ZmqListenOptions listen;
  ZmqConnectOptions connect;
  std::unique_ptr<curve::ZapHandler> zap;
  std::unique_ptr<zmq::socket_t> socket;
  std::unique_ptr<curve::SocketMonitor> monitor;
  std::atomic<bool> auth_failed{false};
  std::atomic<bool> disconnected{false};

  const std::string& endpoint() const { return listening ? listen.endpoint : connect.endpoint; }
  absl::Status Bind();
  absl::Status Dial();
  void Close();
  // One message already queued, without waiting. Throws zmq::error_t.
  std::optional<Message> TryRecv();
};

// Everything that can throw is inside the try: a zmq::error_t becomes
// kUnavailable naming the endpoint.
absl::Status ZmqTransport::Impl::Bind() {
  RDF_ASSIGN_OR_RETURN(
      zap, curve::ZapHandler::Start(
               ctx, listen.allowed_keys,
               [cb = listen.on_key_refused](const std::string& key, const std::string& address,
                                            bool admitted) {
                 if (!admitted && cb) cb(key, address);
               }));
  try {
    socket = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::router);
    socket->set(zmq::sockopt::curve_server, 1);
    socket->set(zmq::sockopt::curve_secretkey, listen.secret_key);
    socket->set(zmq::sockopt::zap_domain, listen.zap_domain);
    if (listen.max_message_bytes > 0) socket->set(zmq::sockopt::maxmsgsize, listen.max_message_bytes);
    if (listen.rcvhwm > 0) socket->set(zmq::sockopt::rcvhwm, listen.rcvhwm);
    if (listen.sndhwm > 0) socket->set(zmq::sockopt::sndhwm, listen.sndhwm);
    socket->set(zmq::sockopt::linger, 0);
    if (listen.heartbeats) {
      socket->set(zmq::sockopt::heartbeat_ivl, 1000);
      socket->set(zmq::sockopt::heartbeat_timeout, 5000);
    }
    if (listen.on_handshake_failed) {
      absl::StatusOr<std::unique_ptr<curve::SocketMonitor>> mon = curve::SocketMonitor::Start(
          ctx, *socket, ZMQ_EVENT_ALL,
          [cb = listen.on_handshake_failed](int event, int value, const std::string& address) {
            // (An unknown key is reported by the ZAP handler's callback.)
            if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
                event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
              cb(address, curve::MonitorEventName(event), value);
            }
          });
      if (!mon.ok()) return mon.status();
      monitor = *std::move(mon);
    }
    socket->bind(listen.endpoint);
  } catch (const zmq::error_t& e) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen.endpoint, ": ", e.what()));
  }
  return absl::OkStatus();
}

absl::Status ZmqTransport::Impl::Dial() {
  RDF_ASSIGN_OR_RETURN(CurveClientKeys keys, connect.keys());
  try {
    socket = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
    socket->set(zmq::sockopt::curve_serverkey, keys.server_key);
    socket->set(zmq::sockopt::curve_publickey, keys.public_key);
    socket->set(zmq::sockopt::curve_secretkey, keys.secret_key);
    socket->set(zmq::sockopt::linger, 0);
    socket->set(zmq::sockopt::sndhwm, connect.sndhwm);
    socket->set(zmq::sockopt::reconnect_ivl, 100);
    socket->set(zmq::sockopt::reconnect_ivl_max, 2000);
    socket->set(zmq::sockopt::heartbeat_ivl, 1000);
    socket->set(zmq::sockopt::heartbeat_timeout, 5000);
    absl::StatusOr<std::unique_ptr<curve::SocketMonitor>> mon = curve::SocketMonitor::Start(
        ctx, *socket, ZMQ_EVENT_ALL, [this](int event, int, const std::string&) {
          if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ||
              event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
              event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
            auth_failed = true;
          } else if (event == ZMQ_EVENT_DISCONNECTED) {
            disconnected = true;
          }
        });
    if (!mon.ok()) return mon.status();
    monitor = *std::move(mon);
    socket->connect(connect.endpoint);
  } catch (const zmq::error_t& e) {
    return absl::UnavailableError(absl::StrCat("cannot connect to ", connect.endpoint, ": ", e.what()));
  }
  return absl::OkStatus();
}

void ZmqTransport::Impl::Close() {
  monitor.reset();
  if (socket) socket->close();
  socket.reset();
}

std::optional<Message> ZmqTransport::Impl::TryRecv() {
  for (;;) {
    std::vector<zmq::message_t> frames(1);
    if (!socket->recv(frames[0], zmq::recv_flags::dontwait)) return std::nullopt;
    if (!listening) return Message{"", frames[0].to_string(), ""};
    // The rest of a multipart message is there already (ZeroMQ delivers it
    // whole).
    while (frames.back().more()) {
      frames.emplace_back();
      if (!socket->recv(frames.back(), zmq::recv_flags::none)) break;
    }
    // [routing id][body] (extra frames dropped), or a REQ client's
    // [routing id][empty][body]; anything else is not ours.
    const size_t body = listen.request_envelope ? 2 : 1;
    if (frames.size() <= body || (listen.request_envelope &&
                                  (frames.size() != 3 || frames[1].size() != 0))) {
      continue;
    }
    Message m{frames[0].to_string(), frames[body].to_string(), ""};
    try {
      m.sender_key = frames[body].gets("User-Id");  // the key the ZAP handler admitted
    } catch (const zmq::error_t&) {
      // No User-Id: not admitted through a ZAP handler.
    }
    return m;
  }
}

absl::StatusOr<std::unique_ptr<ZmqTransport>> ZmqTransport::Listen(ZmqListenOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->listening = true;
  impl->listen = std::move(options);
  RDF_RETURN_IF_ERROR(impl->Bind());
  return std::unique_ptr<ZmqTransport>(new ZmqTransport(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<ZmqTransport>> ZmqTransport::Connect(ZmqConnectOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->connect = std::move(options);
  RDF_RETURN_IF_ERROR(impl->Dial());
  return std::unique_ptr<ZmqTransport>(new ZmqTransport(std::move(impl)));
}

ZmqTransport::ZmqTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ZmqTransport::~ZmqTransport() {
  impl_->Close();
  impl_->zap.reset();
}

absl::Status ZmqTransport::Send(absl::string_view peer, absl::string_view body) {
  if (impl_->socket == nullptr) return absl::UnavailableError("not connected");
  try {
    zmq::socket_t& s = *impl_->socket;
    if (impl_->listening &&
        (!s.send(zmq::buffer(peer.data(), peer.size()),
                 zmq::send_flags::sndmore | zmq::send_flags::dontwait) ||
         (impl_->listen.request_envelope &&
          !s.send(zmq::message_t(), zmq::send_flags::sndmore | zmq::send_flags::dontwait)))) {
      return absl::UnavailableError("send queue full");
    }
    if (!s.send(zmq::buffer(body.data(), body.size()), zmq::send_flags::dontwait)) {
      return absl::UnavailableError("send queue full");
    }
  } catch (const zmq::error_t& e) {
    // A peer that vanished, a queue that is full.
    return absl::UnavailableError(absl::StrCat("send to ", impl_->endpoint(), ": ", e.what()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<Message>> ZmqTransport::Recv(absl::Duration timeout) {
  if (impl_->socket == nullptr) {
    // No socket (a Reconnect failed): wait as asked, then report nothing.
    absl::SleepFor(timeout);
    return std::nullopt;
  }
  try {
    std::optional<Message> m = impl_->TryRecv();
    if (m.has_value() || timeout <= absl::ZeroDuration()) return m;
    zmq::pollitem_t items[] = {{impl_->socket->handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, std::chrono::milliseconds((absl::ToInt64Microseconds(timeout) + 999) / 1000));
    return impl_->TryRecv();
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return std::nullopt;  // a signal (SIGTERM): the caller looks at its stop flag
    return absl::InternalError(absl::StrCat("receive on ", impl_->endpoint(), ": ", e.what()));
  }
}

LinkEvents ZmqTransport::TakeLinkEvents() {
  LinkEvents e;
  e.auth_failed = impl_->auth_failed.exchange(false);
  e.disconnected = impl_->disconnected.exchange(false);
  return e;
}

absl::Status ZmqTransport::Reconnect() {
  if (impl_->listening) return absl::OkStatus();
  impl_->Close();
  return impl_->Dial();
}

}  // namespace rdf::net
