// Generator: the one seeded random source. xoshiro256** seeded through splitmix64, with
// our own uniform and Box-Muller normal, so the same seed gives the same numbers on every
// machine and compiler (std::normal_distribution does not promise that). The state is four
// words that checkpoints can save and restore.
#pragma once
#include <array>
#include <cstdint>

namespace minidl {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) { manual_seed(seed); }
  void manual_seed(uint64_t seed);

  uint64_t next_u64();
  double uniform();                          // [0, 1), 53 random bits
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  double normal(double mean = 0.0, double std = 1.0);  // Box-Muller, one draw per call
  uint64_t randint(uint64_t n);             // [0, n), unbiased

  using State = std::array<uint64_t, 4>;
  State state() const { return s_; }
  void set_state(const State& s) { s_ = s; }

 private:
  State s_{};
};

// splitmix64's mixing step: a bijection on 64-bit words that scatters nearby inputs far
// apart. Used to derive independent seeds from (seed, epoch, index) tuples.
uint64_t mix64(uint64_t x);

// The process-wide default generator used when an op or initialiser is given none.
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace minidl
