// minidl::Error: the one exception type the library throws. Messages name the op, tensor,
// file or flag at fault and what was expected; apps catch it in main and exit non-zero.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace minidl {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace minidl

// MINIDL_CHECK(cond, "op: ", x, " expected ...") throws minidl::Error with the pieces joined.
#define MINIDL_CHECK(cond, ...)                                     \
  do {                                                              \
    if (!(cond)) throw ::minidl::Error(::minidl::detail::concat(__VA_ARGS__)); \
  } while (0)
