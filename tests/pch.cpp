// Compiled with the tests' shared precompiled header (tests/CMakeLists.txt): the file CMake needs so that the
// header is built for funnel_test_main (main.cpp skips it), and every test binary reuses it. Nothing else is here.
