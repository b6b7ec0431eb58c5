#include "models/counterfactual.hpp"

#include <sstream>

#include "core/error.hpp"

namespace funnel::counterfactual {

EsmmPart esmm_part(Graph& g, const ModelConfig& c, ModelHandle& h) {
  EsmmPart e;
  e.in = blocks::make_inputs(g, c, h);
  e.shared = blocks::embed(g, c, e.in, "embedding");
  e.pctr = blocks::tower(g, c, e.shared, "ctr_tower", "pctr");
  e.pcvr = blocks::tower(g, c, e.shared, "cvr_tower", "pcvr");
  blocks::entire_space_funnel(g, e.in, {e.pctr, e.pcvr}, h);
  return e;
}

Var ips_weight(Var o, Var p, double tau, const std::string& name) {
  Var prop = clip(stop_gradient(p, name + "_propensity"), tau, 1.0, name + "_clip");
  return divide(o, prop, 0.0, 1.0 / tau, name);
}

Var ips_risk_rows(Var o, Var propensity, Var q, Var y, double tau, const std::string& name) {
  return mul(ips_weight(o, propensity, tau, name + "_weight"),
             bce_logprob_rows(blocks::log_prob(q, name + "_log_p"), y, name + "_error"), name);
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

double weight_option(const ModelConfig& c, const std::string& option) { return number_option(c, option, 0.0, 1e3); }
double propensity_clip(const ModelConfig& c) { return number_option(c, "propensity_clip", 1e-6, 1.0); }

ModelOption weight_decl(const std::string& option, double dflt, const std::string& help) {
  return {option, dflt, help};
}
ModelOption propensity_clip_decl(const std::string& help) { return {"propensity_clip", 0.02, help}; }

}  // namespace funnel::counterfactual
