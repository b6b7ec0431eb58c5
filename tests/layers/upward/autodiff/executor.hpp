#pragma once
// Fixture for layers/catches_upward_include: a header a core file may not include.
#include "core/graph.hpp"
