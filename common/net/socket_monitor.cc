#include "common/net/socket_monitor.h"

#include <zmq.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace rdf::curve {
namespace {

constexpr long kPollMs = 100;

struct Name {
  int value;
  const char* name;
};

constexpr Name kEventNames[] = {
    {ZMQ_EVENT_CONNECTED, "CONNECTED"},
    {ZMQ_EVENT_CONNECT_DELAYED, "CONNECT_DELAYED"},
    {ZMQ_EVENT_CONNECT_RETRIED, "CONNECT_RETRIED"},
    {ZMQ_EVENT_LISTENING, "LISTENING"},
    {ZMQ_EVENT_BIND_FAILED, "BIND_FAILED"},
    {ZMQ_EVENT_ACCEPTED, "ACCEPTED"},
    {ZMQ_EVENT_ACCEPT_FAILED, "ACCEPT_FAILED"},
    {ZMQ_EVENT_CLOSED, "CLOSED"},
    {ZMQ_EVENT_CLOSE_FAILED, "CLOSE_FAILED"},
    {ZMQ_EVENT_DISCONNECTED, "DISCONNECTED"},
    {ZMQ_EVENT_MONITOR_STOPPED, "MONITOR_STOPPED"},
    {ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL, "HANDSHAKE_FAILED_NO_DETAIL"},
    {ZMQ_EVENT_HANDSHAKE_SUCCEEDED, "HANDSHAKE_SUCCEEDED"},
    {ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL, "HANDSHAKE_FAILED_PROTOCOL"},
    {ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, "HANDSHAKE_FAILED_AUTH"},
};

constexpr Name kProtocolErrorNames[] = {
    {ZMQ_PROTOCOL_ERROR_ZMTP_UNSPECIFIED, "UNSPECIFIED"},
    {ZMQ_PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND, "UNEXPECTED_COMMAND"},
    {ZMQ_PROTOCOL_ERROR_ZMTP_INVALID_SEQUENCE, "INVALID_SEQUENCE"},
    {ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE, "KEY_EXCHANGE"},
    {ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_UNSPECIFIED, "MALFORMED_COMMAND_UNSPECIFIED"},
    {ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_MESSAGE, "MALFORMED_COMMAND_MESSAGE"},
    {ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_HELLO, "MALFORMED_COMMAND_HELLO"},
    {ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_INITIATE, "MALFORMED_COMMAND_INITIATE"},
    {ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_ERROR, "MALFORMED_COMMAND_ERROR"},
    {ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_READY, "MALFORMED_COMMAND_READY"},
    {ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_WELCOME, "MALFORMED_COMMAND_WELCOME"},
    {ZMQ_PROTOCOL_ERROR_ZMTP_INVALID_METADATA, "INVALID_METADATA"},
    {ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC, "CRYPTOGRAPHIC"},
    {ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH, "MECHANISM_MISMATCH"},
    {ZMQ_PROTOCOL_ERROR_ZAP_UNSPECIFIED, "ZAP_UNSPECIFIED"},
    {ZMQ_PROTOCOL_ERROR_ZAP_MALFORMED_REPLY, "ZAP_MALFORMED_REPLY"},
    {ZMQ_PROTOCOL_ERROR_ZAP_BAD_REQUEST_ID, "ZAP_BAD_REQUEST_ID"},
    {ZMQ_PROTOCOL_ERROR_ZAP_BAD_VERSION, "ZAP_BAD_VERSION"},
    {ZMQ_PROTOCOL_ERROR_ZAP_INVALID_STATUS_CODE, "ZAP_INVALID_STATUS_CODE"},
    {ZMQ_PROTOCOL_ERROR_ZAP_INVALID_METADATA, "ZAP_INVALID_METADATA"},
};

template <size_t N>
const char* Lookup(const Name (&names)[N], int value) {
  for (const Name& n : names) {
    if (n.value == value) return n.name;
  }
  return nullptr;
}

// A unique inproc endpoint per monitor in this process.
std::string NewEndpoint() {
  static std::atomic<uint64_t> counter{0};
  return absl::StrCat("inproc://rdf-socket-monitor-", counter.fetch_add(1));
}

// Reads one frame; false on EAGAIN (nothing waiting) or any error.
bool ReceiveFrame(void* socket, int flags, std::string* out, bool* more) {
  zmq_msg_t msg;
  zmq_msg_init(&msg);
  if (zmq_msg_recv(&msg, socket, flags) < 0) {
    zmq_msg_close(&msg);
    return false;
  }
  out->assign(static_cast<const char*>(zmq_msg_data(&msg)), zmq_msg_size(&msg));
  *more = zmq_msg_more(&msg);
  zmq_msg_close(&msg);
  return true;
}

}  // namespace

std::string MonitorEventName(int event) {
  if (const char* name = Lookup(kEventNames, event)) return name;
  return absl::StrFormat("EVENT_0x%x", event);
}

std::string ProtocolErrorName(int value) {
  if (const char* name = Lookup(kProtocolErrorNames, value)) return name;
  return absl::StrFormat("0x%x", value);
}

absl::StatusOr<std::unique_ptr<SocketMonitor>> SocketMonitor::Start(zmq::context_t& context,
                                                                    zmq::socket_ref socket,
                                                                    int events,
                                                                    Callback callback) {
  if (!callback) return absl::InvalidArgumentError("SocketMonitor needs a callback");
  std::string endpoint = NewEndpoint();
  if (zmq_socket_monitor(socket.handle(), endpoint.c_str(), events == 0 ? ZMQ_EVENT_ALL
                                                                        : events) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("zmq_socket_monitor: ", zmq_strerror(zmq_errno())));
  }
  void* pair = zmq_socket(context.handle(), ZMQ_PAIR);
  if (pair == nullptr) {
    zmq_socket_monitor(socket.handle(), nullptr, 0);
    return absl::InternalError(absl::StrCat("monitor socket: ", zmq_strerror(zmq_errno())));
  }
  const int linger = 0;
  zmq_setsockopt(pair, ZMQ_LINGER, &linger, sizeof linger);
  if (zmq_connect(pair, endpoint.c_str()) != 0) {
    const int err = zmq_errno();
    zmq_close(pair);
    zmq_socket_monitor(socket.handle(), nullptr, 0);
    return absl::InternalError(absl::StrCat("connect ", endpoint, ": ", zmq_strerror(err)));
  }
  return std::unique_ptr<SocketMonitor>(
      new SocketMonitor(pair, std::move(endpoint), std::move(callback)));
}

SocketMonitor::SocketMonitor(void* pair, std::string endpoint, Callback callback)
    : pair_(pair), endpoint_(std::move(endpoint)), callback_(std::move(callback)) {
  // Starting the thread is a full memory barrier: the PAIR socket moves to it.
  thread_ = std::thread([this] { Run(); });
}

SocketMonitor::~SocketMonitor() {
  stop_.store(true);
  thread_.join();
}

void SocketMonitor::Run() {
  zmq_pollitem_t item = {pair_, 0, ZMQ_POLLIN, 0};
  bool running = true;
  while (running && !stop_.load()) {
    const int rc = zmq_poll(&item, 1, kPollMs);
    if (rc < 0 && zmq_errno() == EINTR) continue;
    if (rc < 0) break;  // ETERM
    // One event is two frames: 6 bytes (uint16 event, uint32 value, native
    // byte order), then the endpoint.
    std::string header, address;
    bool more = false;
    while (running && !stop_.load() && ReceiveFrame(pair_, ZMQ_DONTWAIT, &header, &more)) {
      if (!more || !ReceiveFrame(pair_, 0, &address, &more)) break;
      if (header.size() < 6) continue;
      uint16_t event;
      uint32_t value;
      std::memcpy(&event, header.data(), sizeof event);
      std::memcpy(&value, header.data() + 2, sizeof value);
      callback_(event, static_cast<int>(value), address);
      running = event != ZMQ_EVENT_MONITOR_STOPPED;
    }
  }
  zmq_close(pair_);
}

}  // namespace rdf::curve
