#pragma once
/// @file
/// The shape shared by funnel's name registries (optimizers, data formats): definitions kept sorted by their
/// `order` field (equal orders in registration order), and registrars that run at static-initialisation time.
#include <algorithm>
#include <functional>
#include <memory>
#include <vector>

namespace funnel {

/// Definitions of type Def (with an `int order` member), kept sorted by order, stable. Not thread-safe: filled at
/// static-initialisation time, read afterwards.
template <class Def>
class OrderedRegistry {
 public:
  /// Inserts `d` after every definition whose order is not greater.
  void add(Def d) {
    const int order = d.order;
    auto at = std::upper_bound(items_.begin(), items_.end(), order, [](int o, const auto& x) { return o < x->order; });
    items_.insert(at, std::make_unique<const Def>(std::move(d)));
  }
  /// The first definition for which `pred` holds, or null.
  template <class Pred>
  const Def* find_if(Pred pred) const {
    for (const auto& x : items_)
      if (pred(*x)) return x.get();
    return nullptr;
  }
  /// Every definition, in order.
  std::vector<const Def*> all() const {
    std::vector<const Def*> out;
    for (const auto& x : items_) out.push_back(x.get());
    return out;
  }

 private:
  std::vector<std::unique_ptr<const Def>> items_;
};

/// Runs a registration at static-initialisation time; an exception is printed ("funnel: cannot register WHAT:
/// ...") and aborts the program, since there is no caller to report it to.
void register_or_abort(const char* what, const std::function<void()>& registration);

}  // namespace funnel
