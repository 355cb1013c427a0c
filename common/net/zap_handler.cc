#include "common/net/zap_handler.h"

#include <zmq.h>

#include <cerrno>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/net/curve_keys.h"

namespace rdf::curve {
namespace {

// The thread's poll timeout: how long the destructor may wait for it.
constexpr long kPollMs = 100;
// A ZAP request from libzmq has 9 frames for CURVE (with the routing
// envelope a ROUTER socket adds); more is never legitimate.
constexpr size_t kMaxFrames = 16;

enum class Received { kMessage, kNone, kFatal };

// Receives one multipart message without blocking. Frames past kMaxFrames
// are read and dropped.
Received ReceiveFrames(void* socket, std::vector<std::string>* frames) {
  frames->clear();
  for (;;) {
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    const int rc = zmq_msg_recv(&msg, socket, frames->empty() ? ZMQ_DONTWAIT : 0);
    if (rc < 0) {
      const int err = zmq_errno();
      zmq_msg_close(&msg);
      if (err == EAGAIN || err == EINTR) return frames->empty() ? Received::kNone
                                                                : Received::kFatal;
      return Received::kFatal;
    }
    if (frames->size() < kMaxFrames) {
      frames->emplace_back(static_cast<const char*>(zmq_msg_data(&msg)), zmq_msg_size(&msg));
    }
    const bool more = zmq_msg_more(&msg);
    zmq_msg_close(&msg);
    if (!more) return Received::kMessage;
  }
}

void SendFrames(void* socket, const std::vector<std::string>& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    const int flags = (i + 1 < frames.size() ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT;
    // A failure here means libzmq dropped the handshake or the context is
    // ending; either way there is nobody to tell.
    if (zmq_send(socket, frames[i].data(), frames[i].size(), flags) < 0) return;
  }
}

// Frame positions in a request as a ROUTER receives it (RFC 27 after the
// routing id and the empty delimiter).
enum Frame : size_t {
  kRoutingId = 0,
  kDelimiter,
  kVersion,
  kRequestId,
  kDomain,
  kAddress,
  kIdentity,
  kMechanism,
  kCredentials,
};

std::vector<std::string> Reply(const std::vector<std::string>& request, const char* code,
                               const char* text, const std::string& user_id) {
  return {request[kRoutingId], "", "1.0", request[kRequestId], code, text, user_id, ""};
}

std::string KeyToZ85(const std::string& key) {
  char z85[kZ85KeyLength + 1] = {};
  if (key.size() != 32 ||
      zmq_z85_encode(z85, reinterpret_cast<const uint8_t*>(key.data()), key.size()) == nullptr) {
    return "";
  }
  return z85;
}

absl::Status CheckKeys(const std::set<std::string>& keys) {
  for (const std::string& k : keys) {
    if (!IsZ85Key(k)) {
      return absl::InvalidArgumentError(
          absl::StrCat("allowed client key '", k, "' is not 40 Z85 characters"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ZapHandler>> ZapHandler::Start(zmq::context_t& context,
                                                              std::set<std::string> allowed_keys,
                                                              Callback callback) {
  if (absl::Status s = CheckKeys(allowed_keys); !s.ok()) return s;
  void* socket = zmq_socket(context.handle(), ZMQ_ROUTER);
  if (socket == nullptr) {
    return absl::InternalError(absl::StrCat("ZAP socket: ", zmq_strerror(zmq_errno())));
  }
  const int linger = 0;
  zmq_setsockopt(socket, ZMQ_LINGER, &linger, sizeof linger);
  if (zmq_bind(socket, kZapEndpoint) != 0) {
    const int err = zmq_errno();
    zmq_close(socket);
    if (err == EADDRINUSE) {
      return absl::AlreadyExistsError(
          absl::StrCat("a ZAP handler is already bound at ", kZapEndpoint, " in this context"));
    }
    return absl::InternalError(absl::StrCat("bind ", kZapEndpoint, ": ", zmq_strerror(err)));
  }
  return std::unique_ptr<ZapHandler>(
      new ZapHandler(socket, std::move(allowed_keys), std::move(callback)));
}

ZapHandler::ZapHandler(void* socket, std::set<std::string> allowed_keys, Callback callback)
    : socket_(socket), callback_(std::move(callback)), allowed_(std::move(allowed_keys)) {
  // Starting the thread is a full memory barrier: the socket moves to it.
  thread_ = std::thread([this] { Run(); });
}

ZapHandler::~ZapHandler() {
  stop_.store(true);
  thread_.join();
}

absl::Status ZapHandler::SetAllowedKeys(std::set<std::string> allowed_keys) {
  if (absl::Status s = CheckKeys(allowed_keys); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  allowed_ = std::move(allowed_keys);
  return absl::OkStatus();
}

std::set<std::string> ZapHandler::allowed_keys() const {
  absl::MutexLock lock(&mu_);
  return allowed_;
}

bool ZapHandler::IsAllowed(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  return allowed_.count(key) > 0;
}

void ZapHandler::Run() {
  zmq_pollitem_t item = {socket_, 0, ZMQ_POLLIN, 0};
  bool usable = true;
  while (usable && !stop_.load()) {
    const int rc = zmq_poll(&item, 1, kPollMs);
    if (rc < 0 && zmq_errno() == EINTR) continue;
    if (rc < 0) break;  // ETERM: the context is shutting down
    while (rc > 0 && usable && !stop_.load()) {
      std::vector<std::string> request;
      const Received r = ReceiveFrames(socket_, &request);
      if (r == Received::kNone) break;
      usable = r != Received::kFatal;
      if (usable && request.size() > kMechanism && request[kDelimiter].empty()) {
        ServeRequest(request);
      }
    }
  }
  zmq_close(socket_);
}

void ZapHandler::ServeRequest(const std::vector<std::string>& request) {
  const std::string& address = request[kAddress];
  if (request[kVersion] != "1.0") {
    SendFrames(socket_, Reply(request, "500", "ZAP version not supported", ""));
    return;
  }
  if (request[kMechanism] != "CURVE" || request.size() <= kCredentials) {
    Decide(request, "", address, false, "mechanism not allowed");
    return;
  }
  const std::string key = KeyToZ85(request[kCredentials]);
  Decide(request, key, address, !key.empty() && IsAllowed(key), "unknown client key");
}

void ZapHandler::Decide(const std::vector<std::string>& request, const std::string& key,
                        const std::string& address, bool admitted, const char* refusal) {
  (admitted ? admitted_ : refused_).fetch_add(1, std::memory_order_relaxed);
  // Answer first: the handshake waits for the reply, not for the callback.
  SendFrames(socket_, admitted ? Reply(request, "200", "OK", key)
                               : Reply(request, "400", refusal, ""));
  if (callback_) callback_(key, address, admitted);
}

}  // namespace rdf::curve
