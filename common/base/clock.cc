#include "common/base/clock.h"

#include <cerrno>
#include <ctime>

namespace rdf {
namespace {

int64_t ReadClock(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return int64_t{ts.tv_sec} * 1'000'000 + ts.tv_nsec / 1000;
}

class RealClock : public Clock {
 public:
  int64_t NowMicros() override { return ReadClock(CLOCK_REALTIME); }
  int64_t MonotonicMicros() override { return ReadClock(CLOCK_MONOTONIC); }
  void SleepMicros(int64_t micros) override {
    if (micros <= 0) return;
    timespec req{static_cast<time_t>(micros / 1'000'000),
                 static_cast<long>((micros % 1'000'000) * 1000)};
    timespec rem;
    // A signal cuts the sleep short; sleep the rest.
    while (nanosleep(&req, &rem) != 0 && errno == EINTR) req = rem;
  }
};

}  // namespace

Clock* Clock::Real() {
  static Clock* const clock = new RealClock;
  return clock;
}

}  // namespace rdf
