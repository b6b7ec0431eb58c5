# The API reference: Doxygen (Debian's doxygen) over the headers `cmake --install` installs (cmake/FunnelInstall.cmake
# installs every layer folder's *.hpp).
#
#   cmake --build build --target docs     ->  build/docs/api/html/index.html
#   ctest -R '^docs/api$'                 ->  fails on any Doxygen warning (an undocumented public entity, a
#                                             documentation error) in any installed header or in docs/api.md
#
# Every layer folder is gated: the whole public API is documented, and the test keeps it so.
get_property(_funnel_docs_dirs GLOBAL PROPERTY FUNNEL_LAYER_DIRS)  # what is installed, in layer order
set(FUNNEL_DOCS_INPUT "")
foreach(dir ${_funnel_docs_dirs})
  file(GLOB _h ${PROJECT_SOURCE_DIR}/${dir}/*.hpp)
  if(_h)
    string(APPEND FUNNEL_DOCS_INPUT " \\\n                         ${PROJECT_SOURCE_DIR}/${dir}")
  endif()
endforeach()
string(APPEND FUNNEL_DOCS_INPUT " \\\n                         ${PROJECT_SOURCE_DIR}/docs/api.md")
# The namespaces' descriptions (a namespace spans many headers, so it is described once, there).
string(APPEND FUNNEL_DOCS_INPUT " \\\n                         ${PROJECT_SOURCE_DIR}/docs/namespaces.dox")

find_program(DOXYGEN_EXECUTABLE doxygen)
# Two configurations of the same file: the `docs` target's and the test's (their own output folders, so a test run
# never races a build of the target).
set(FUNNEL_DOCS_OUTPUT ${PROJECT_BINARY_DIR}/docs/api)
set(FUNNEL_DOCS_LOG ${PROJECT_BINARY_DIR}/docs/api-warnings.log)
configure_file(${PROJECT_SOURCE_DIR}/docs/Doxyfile.in ${PROJECT_BINARY_DIR}/docs/Doxyfile @ONLY)
set(FUNNEL_DOCS_OUTPUT ${PROJECT_BINARY_DIR}/docs/api-check)
set(FUNNEL_DOCS_LOG ${PROJECT_BINARY_DIR}/docs/api-check/warnings.log)
configure_file(${PROJECT_SOURCE_DIR}/docs/Doxyfile.in ${PROJECT_BINARY_DIR}/docs/api-check/Doxyfile @ONLY)

if(DOXYGEN_EXECUTABLE)
  add_custom_target(docs
    COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/docs/api
    COMMAND ${DOXYGEN_EXECUTABLE} ${PROJECT_BINARY_DIR}/docs/Doxyfile
    COMMAND ${CMAKE_COMMAND} -E echo "API reference: ${PROJECT_BINARY_DIR}/docs/api/html/index.html (warnings: ${PROJECT_BINARY_DIR}/docs/api-warnings.log)"
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    COMMENT "Doxygen: the API reference of the installed headers"
    VERBATIM)
else()
  message(STATUS "doxygen not found: no `docs` target, the test docs/api skips (apt-get install doxygen)")
endif()

if(FUNNEL_TESTS)
  add_test(NAME docs/api
           COMMAND ${CMAKE_COMMAND} "-DDOXYGEN=${DOXYGEN_EXECUTABLE}" -DDOXYFILE=${PROJECT_BINARY_DIR}/docs/api-check/Doxyfile
                   -DLOG=${PROJECT_BINARY_DIR}/docs/api-check/warnings.log -DSOURCE_DIR=${PROJECT_SOURCE_DIR}
                   -P ${PROJECT_SOURCE_DIR}/cmake/check_api_docs.cmake)
  set_tests_properties(docs/api PROPERTIES SKIP_REGULAR_EXPRESSION "docs/api: SKIPPED" TIMEOUT 300)
endif()
