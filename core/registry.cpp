#include "core/registry.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>

namespace funnel {

void register_or_abort(const char* what, const std::function<void()>& registration) {
  try {
    registration();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "funnel: cannot register %s: %s\n", what, e.what());
    std::abort();
  }
}

}  // namespace funnel
