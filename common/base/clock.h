// The clock seam: wall time (audit timestamps, RTD on the primary's clock),
// monotonic time (timeouts, ages) and sleeping, so tests can control time.
#ifndef RDF_COMMON_BASE_CLOCK_H_
#define RDF_COMMON_BASE_CLOCK_H_

#include <atomic>
#include <cstdint>

namespace rdf {

class Clock {
 public:
  virtual ~Clock() = default;
  // The real clock; never null, never deleted.
  static Clock* Real();
  // Wall clock, microseconds since the Unix epoch.
  virtual int64_t NowMicros() = 0;
  // Monotonic clock, microseconds from an arbitrary origin.
  virtual int64_t MonotonicMicros() = 0;
  virtual void SleepMicros(int64_t micros) = 0;
};

// A clock that moves only when told. SleepMicros advances it. Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t start_micros = 1'700'000'000'000'000)
      : now_(start_micros) {}
  int64_t NowMicros() override { return now_.load(); }
  int64_t MonotonicMicros() override { return now_.load(); }
  void SleepMicros(int64_t micros) override { Advance(micros); }
  void Advance(int64_t micros) { now_.fetch_add(micros); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace rdf

#endif  // RDF_COMMON_BASE_CLOCK_H_
