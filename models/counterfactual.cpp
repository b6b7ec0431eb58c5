#include "models/counterfactual.hpp"

#include <sstream>

#include "core/error.hpp"
#include "models/blocks.hpp"

namespace funnel::counterfactual {

Var ips_weight(Var o, Var p, double tau, const std::string& name) {
  Var prop = clip(stop_gradient(p, name + "_propensity"), tau, 1.0, name + "_clip");
  return divide(o, prop, 0.0, 1.0 / tau, name);
}

Var one_minus(Var x, const std::string& name) { return shift(scale(x, -1.0, name + "_neg"), 1.0, name); }

void add_weighted_loss(Graph& g, ModelHandle& h, Var l, double weight, const std::string& name) {
  blocks::add_loss(g, h, scale(l, weight, name));
}

double number_option(const ModelConfig& c, const std::string& option, double lo, double hi) {
  const double v = model_option(c, option).get<double>();
  if (!(v >= lo && v <= hi)) {
    std::ostringstream o;
    o << "model '" << c.kind << "': option " << option << " must be in [" << lo << ", " << hi << "], got " << v;
    throw GraphError(o.str());
  }
  return v;
}

}  // namespace funnel::counterfactual
