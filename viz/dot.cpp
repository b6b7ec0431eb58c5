#include "viz/dot.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <sstream>
#include <vector>

#include "autodiff/gradflow.hpp"
#include "core/error.hpp"
#include "core/op.hpp"

namespace funnel {

std::string dot_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    if (c == '\\') o += "\\\\";
    else if (c == '"') o += "\\\"";
    else if (c == '\n') o += "\\n";
    else if (c == '\r') continue;
    else o += c;
  }
  return o;
}

namespace {

// ---- colours ----
const char* const kSingle[] = {"#1f6fb4", "#d62728", "#2ca02c", "#ff7f0e", "#17becf", "#8c564b", "#bcbd22"};
constexpr std::size_t kNumSingle = sizeof(kSingle) / sizeof(kSingle[0]);
const char* const kAll = "#7b3fa0";      // every loss
const char* const kSeveral = "#e377c2";  // more than one loss, not all
const char* const kNone = "#a0a0a0";     // no gradient
const char* const kGradDefault = "#8b1a1a";

// Mix a #rrggbb colour with white: t = 0 keeps it, t = 1 gives white.
std::string tint(const std::string& hex, double t) {
  unsigned r = 0, g = 0, b = 0;
  std::sscanf(hex.c_str() + 1, "%2x%2x%2x", &r, &g, &b);
  auto mix = [t](unsigned c) { return static_cast<unsigned>(c + (255.0 - c) * t + 0.5); };
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", mix(r) & 0xff, mix(g) & 0xff, mix(b) & 0xff);
  return buf;
}

// Colour of a set of losses (indices, ascending) out of n.
std::string loss_set_colour(const std::vector<std::size_t>& set, std::size_t n) {
  if (set.empty()) return kNone;
  if (set.size() == n) return kAll;
  if (set.size() == 1) return kSingle[set[0] % kNumSingle];
  return kSeveral;
}

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '&') o += "&amp;";
    else if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

std::string base_name(const std::string& name) {
  auto p = name.rfind('/');
  return p == std::string::npos ? name : name.substr(p + 1);
}

std::string join_losses(const GradFlow& gf, const std::vector<std::size_t>& set) {
  std::string s;
  for (std::size_t k : set) s += (s.empty() ? "" : " + ") + base_name(gf.loss_names[k]);
  return s;
}

// "name\nop (attrs)\nshape" with each part escaped.
std::string join_lines(const std::vector<std::string>& lines) {
  std::string s;
  for (std::size_t i = 0; i < lines.size(); ++i) s += (i ? "\\n" : "") + dot_escape(lines[i]);
  return s;
}

bool is_auto_name(const std::string& base, const std::string& op) {
  if (base == op) return true;
  if (base.rfind(op + "_", 0) != 0) return false;
  for (std::size_t i = op.size() + 1; i < base.size(); ++i)
    if (base[i] < '0' || base[i] > '9') return false;
  return base.size() > op.size() + 1;
}

struct Writer {
  const Graph& g;
  const DotOptions& opt;
  const GradFlow* gf;  // colouring (may be null)
  const GradFlow* bw;  // reach sets for the backward drawing (may be null)
  std::ostringstream o;
  std::vector<const Op*> ops;
  int cluster_counter = 0;

  Writer(const Graph& g_, const DotOptions& o_, const GradFlow* gf_, const GradFlow* bw_)
      : g(g_), opt(o_), gf(gf_), bw(bw_), ops(node_ops(g_)) {}

  // Parameters whose every consumer slot takes a sparse gradient (embedding tables).
  bool sparse_param(NodeId p) const { return has_sparse_grad(g, p); }

  bool gets_grad(NodeId v) const { return bw && !bw->node_losses(v).empty(); }

  void node(const Node& nd, const std::string& ind) {
    std::vector<std::string> lines;
    const std::string base = base_name(nd.name);
    std::string shape = "box", style = "filled", fill = "#ffffff", pen = "#444444", extra;
    switch (nd.kind) {
      case NodeKind::Input:
        lines = {base, "input", nd.shape.str()};
        shape = "parallelogram";
        fill = "#fff2cc";
        pen = "#b59a3c";
        break;
      case NodeKind::Ids:
        lines = {base, "ids · " + std::to_string(nd.num_fields) + " fields", nd.shape.str()};
        shape = "parallelogram";
        fill = "#fde2c8";
        pen = "#b8733a";
        break;
      case NodeKind::Param: {
        lines = {base, "param · " + nd.init.str() + (sparse_param(nd.id) ? " · sparse grad" : ""), nd.shape.str()};
        fill = "#dae8fc";
        pen = "#3c6ea8";
        if (gf) {
          auto set = gf->node_losses(nd.id);
          const std::string c = loss_set_colour(set, gf->losses.size());
          fill = tint(c, 0.72);
          pen = c;
          extra = ", penwidth=2";
          lines.push_back(set.empty() ? "∇ none" : "∇ " + join_losses(*gf, set));
          std::vector<std::size_t> stopped;  // losses that read it through a stop_gradient (no gradient by design)
          const std::size_t pi = gf->param_index(nd.id);
          for (std::size_t k = 0; k < gf->losses.size(); ++k)
            if (gf->table[pi][k].value_only) stopped.push_back(k);
          if (!stopped.empty()) lines.push_back("∇ stopped: " + join_losses(*gf, stopped));
          if (gf->numeric) {
            const std::size_t i = gf->param_index(nd.id);
            bool agree = true;
            for (std::size_t k = 0; k < gf->losses.size(); ++k)
              agree = agree && (gf->table[i][k].structural == gf->table[i][k].nonzero);
            if (!agree) lines.push_back("⚠ numeric ≠ structural");
          }
        }
        break;
      }
      case NodeKind::Op: {
        std::string opline = nd.op;
        const std::string at = nd.attrs.summary();
        if (!at.empty()) opline += " (" + at + ")";
        if (is_auto_name(base, nd.op) && at.empty()) lines = {base, nd.shape.str()};
        else lines = {base, opline, nd.shape.str()};
        style = "rounded,filled";
        fill = "#f2f2f2";
        pen = "#666666";
        if (nd.is_output) {
          fill = "#d5e8d4";
          pen = "#4f8a3c";
          extra = ", peripheries=2";
          lines.push_back("output");
        }
        if (nd.is_loss) {
          fill = "#f8cecc";
          pen = "#b85450";
          shape = "octagon";
          extra = ", penwidth=2";
          lines.push_back("loss");
        }
        if (gf && !nd.is_loss && !nd.is_output) {
          auto set = gf->node_losses(nd.id);
          if (!set.empty()) {
            pen = loss_set_colour(set, gf->losses.size());
            extra = ", penwidth=1.5";
          }
        }
        break;
      }
    }
    o << ind << "n" << nd.id << " [label=\"" << join_lines(lines) << "\", shape=" << shape << ", style=\"" << style
      << "\", fillcolor=\"" << fill << "\", color=\"" << pen << "\"" << extra << ", tooltip=\""
      << dot_escape(nd.name + " (" + to_string(nd.kind) + ")") << "\"];\n";
    if (opt.backward && gets_grad(nd.id)) {
      std::string gl = "∂L/∂" + base;
      std::string gshape = sparse_param(nd.id) ? "sparse rows of " + nd.shape.str() : nd.shape.str();
      std::string col = kGradDefault;
      if (gf) col = loss_set_colour(gf->node_losses(nd.id), gf->losses.size());
      o << ind << "g" << nd.id << " [label=\"" << join_lines({gl, gshape}) << "\", shape=box, style=\"dashed,rounded\""
        << ", color=\"" << col << "\", fontcolor=\"" << col << "\", tooltip=\"" << dot_escape("dL/d " + nd.name)
        << "\"];\n";
      o << ind << "{ rank=same; n" << nd.id << "; g" << nd.id << "; }\n";
    }
  }

  struct Scope {
    std::vector<NodeId> nodes;
    std::map<std::string, Scope> children;  // by base name
  };

  void scope(const std::string& name, const Scope& s, const std::string& ind, int depth) {
    for (NodeId v : s.nodes) node(g.node(v), ind);
    for (const auto& [child, cs] : s.children) {
      std::string id;
      for (char c : child) id += (std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
      const std::string full = name.empty() ? child : name + "/" + child;
      o << ind << "subgraph cluster_" << cluster_counter++ << "_" << id << " {\n";
      const std::string in2 = ind + "  ";
      o << in2 << "label=\"" << dot_escape(child) << "\"; tooltip=\"" << dot_escape(full) << "\";\n";
      o << in2 << "style=\"rounded,filled\"; color=\"#9a9a9a\"; fillcolor=\"" << (depth % 2 ? "#ffffff" : "#f7f7f7")
        << "\"; fontname=\"Helvetica-Bold\"; fontsize=11;\n";
      scope(full, cs, in2, depth + 1);
      o << ind << "}\n";
    }
  }

  void edges() {
    for (const Node& nd : g.nodes()) {
      for (std::size_t s = 0; s < nd.inputs.size(); ++s) {
        const NodeId u = nd.inputs[s];
        std::string col = "#555555", attrs;
        const bool diff = ops[nd.id] && ops[nd.id]->differentiable(s);
        if (gf) {
          auto set = gf->edge_losses(nd.id, s);
          col = loss_set_colour(set, gf->losses.size());
          if (!set.empty()) attrs += ", penwidth=2.2";
        }
        if (!diff) attrs += ", style=dotted";
        o << "  n" << u << " -> n" << nd.id << " [color=\"" << col << "\"";
        if (opt.edge_shapes) o << ", label=\"" << dot_escape(g.node(u).shape.str()) << "\"";
        if (nd.inputs.size() > 1) o << ", tooltip=\"input " << s << "\"";
        o << attrs << "];\n";
      }
    }
    if (!opt.backward || !bw) return;
    // Gradient edges: ∂L/∂v feeds ∂L/∂u for every input slot the gradient passes. Written u -> v with
    // dir=back so the layout keeps forward ranks while the arrow points the way the gradient flows.
    for (const Node& nd : g.nodes()) {
      if (!gets_grad(nd.id)) continue;
      if (nd.is_loss) {
        std::string col = kGradDefault;
        if (gf) col = loss_set_colour(gf->node_losses(nd.id), gf->losses.size());
        o << "  n" << nd.id << " -> g" << nd.id << " [style=dashed, color=\"" << col
          << "\", label=\"seed\", fontcolor=\"" << col << "\"];\n";
      }
      for (std::size_t s = 0; s < nd.inputs.size(); ++s) {
        const NodeId u = nd.inputs[s];
        const auto set = bw->edge_losses(nd.id, s);
        if (set.empty()) continue;
        std::string col = gf ? loss_set_colour(gf->edge_losses(nd.id, s), gf->losses.size()) : kGradDefault;
        o << "  g" << u << " -> g" << nd.id << " [dir=back, style=dashed, color=\"" << col << "\"];\n";
      }
    }
  }

  // One HTML-table node: swatches on the left, explanations on the right.
  void legend() {
    struct Row {
      std::string fill, pen, text;
      bool dashed = false;
    };
    std::vector<Row> rows;
    rows.push_back({"#fff2cc", "#b59a3c", "input: dense features, labels (parallelogram)"});
    rows.push_back({"#fde2c8", "#b8733a", "ids: categorical features (parallelogram)"});
    if (gf) rows.push_back({"#ffffff", "#444444", "parameter (box, filled by its gradient colour below)"});
    else rows.push_back({"#dae8fc", "#3c6ea8", "parameter (box)"});
    rows.push_back({"#f2f2f2", "#666666", "op (rounded box)"});
    rows.push_back({"#d5e8d4", "#4f8a3c", "output (double border)"});
    rows.push_back({"#f8cecc", "#b85450", "loss (octagon)"});
    std::vector<std::string> notes;
    if (gf) {
      const std::size_t n = gf->losses.size();
      auto swatch = [&](const std::string& c, const std::string& text) { rows.push_back({tint(c, 0.72), c, text}); };
      if (n > 1)
        for (std::size_t k = 0; k < n; ++k)
          swatch(kSingle[k % kNumSingle], "gradient from " + gf->loss_names[k] + " only");
      if (n > 2) swatch(kSeveral, "gradient from several losses, not all");
      swatch(kAll, n > 1 ? "gradient from every loss" : "gradient from " + gf->loss_names[0]);
      swatch(kNone, "no gradient");
      notes.push_back("colours: parameter fill, op border, edge = the losses whose gradient flows there");
      for (std::size_t k = 0; k < n; ++k) {
        std::size_t reached = 0;
        for (std::size_t i = 0; i < gf->params.size(); ++i) reached += gf->table[i][k].structural ? 1 : 0;
        notes.push_back(gf->loss_names[k] + " reaches " + std::to_string(reached) + " of " +
                        std::to_string(gf->params.size()) + " parameters");
      }
      if (gf->numeric) {
        const bool agree = gf->disagreements().empty();
        notes.push_back(agree ? "numeric check (float64 backward per loss): agrees; unreached gradients exactly 0"
                              : "numeric check (float64 backward per loss): DISAGREES, see ⚠");
      }
    }
    notes.push_back("dotted edge: input that passes no gradient (labels, ids, stop_gradient)");
    if (gf) notes.push_back("∇ stopped: losses that read the parameter's value only through a stop_gradient");
    if (opt.backward) {
      rows.push_back({"#ffffff", kGradDefault, "∂L/∂x: gradient of the loss sum (dashed box)", true});
      notes.push_back("dashed edges: gradients, arrows point the way they flow");
    }
    o << "  subgraph cluster_legend {\n    label=\"legend\"; style=\"rounded\"; color=\"#9a9a9a\"; "
         "fontname=\"Helvetica-Bold\"; fontsize=11;\n";
    o << "    legend [shape=plaintext, margin=0, label=<<TABLE BORDER=\"0\" CELLBORDER=\"0\" CELLSPACING=\"3\" "
         "CELLPADDING=\"3\">";
    for (const Row& r : rows)
      o << "<TR><TD BORDER=\"2\" BGCOLOR=\"" << r.fill << "\" COLOR=\"" << r.pen << "\"" << (r.dashed ? " STYLE=\"dashed\"" : "")
        << " WIDTH=\"28\"> </TD><TD ALIGN=\"LEFT\">" << html_escape(r.text) << "</TD></TR>";
    for (const std::string& nt : notes)
      o << "<TR><TD COLSPAN=\"2\" ALIGN=\"LEFT\"><FONT POINT-SIZE=\"9\">" << html_escape(nt) << "</FONT></TD></TR>";
    o << "</TABLE>>];\n  }\n";
    // Below the losses (or the sinks), so the tall legend does not stretch the top rank.
    std::vector<NodeId> anchors = g.losses();
    if (anchors.empty())
      for (const Node& nd : g.nodes())
        if (g.consumers(nd.id).empty()) anchors.push_back(nd.id);
    std::sort(anchors.begin(), anchors.end());
    for (NodeId a : anchors) o << "  n" << a << " -> legend [style=invis];\n";
  }

  std::string run() {
    o << "digraph funnel {\n";
    o << "  graph [rankdir=" << opt.rankdir << ", fontname=\"Helvetica\", fontsize=12, nodesep=0.3, ranksep=0.35";
    if (!opt.title.empty()) o << ", label=\"" << dot_escape(opt.title) << "\", labelloc=t, fontsize=16";
    o << "];\n";
    o << "  node [fontname=\"Helvetica\", fontsize=10, margin=\"0.08,0.04\"];\n";
    o << "  edge [fontname=\"Helvetica\", fontsize=8, fontcolor=\"#707070\", arrowsize=0.7];\n";
    Scope root;
    for (const Node& nd : g.nodes()) {
      Scope* s = &root;
      std::string rest = nd.scope;
      while (!rest.empty()) {
        auto p = rest.find('/');
        s = &s->children[rest.substr(0, p)];
        rest = p == std::string::npos ? "" : rest.substr(p + 1);
      }
      s->nodes.push_back(nd.id);
    }
    scope("", root, "  ", 0);
    edges();
    if (opt.legend) legend();
    o << "}\n";
    return o.str();
  }
};

}  // namespace

std::string to_dot(const Graph& g, const DotOptions& opt) {
  if (opt.rankdir != "TB" && opt.rankdir != "LR" && opt.rankdir != "BT" && opt.rankdir != "RL")
    throw GraphError("to_dot: rankdir must be TB, LR, BT or RL, got '" + opt.rankdir + "'");
  GradFlow local;
  const GradFlow* bw = opt.grad_flow;
  if (opt.backward && !bw) {
    local = structural_grad_flow(g);
    bw = &local;
  }
  if (opt.grad_flow) {
    // The analysis must describe this graph.
    if (opt.grad_flow->reach.empty() ? false : opt.grad_flow->reach[0].size() != g.size())
      throw GraphError("to_dot: the grad-flow analysis was made for a graph with " +
                       std::to_string(opt.grad_flow->reach[0].size()) + " nodes, this one has " +
                       std::to_string(g.size()));
  }
  Writer w(g, opt, opt.grad_flow, bw);
  return w.run();
}

}  // namespace funnel
