#pragma once
// Fixture for the layering test: stands for the command line's header that distributed/runs_cli.hpp includes.
