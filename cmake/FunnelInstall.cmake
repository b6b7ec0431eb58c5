# `cmake --install <build> --prefix P` installs
#   P/include/funnel/<layer>/*.hpp          the headers (include them as "core/graph.hpp", or <funnel/core/graph.hpp>)
#   P/lib/libfunnel_<layer>.a               one static library per layer (cmake/FunnelLayers.cmake)
#   P/lib/cmake/funnel/                     the CMake package: find_package(funnel) -> funnel::funnel, and
#                                           funnel::funnel_cli (the whole command line: funnel::cli::run)
#   P/bin/funnel                            the command line, when it was built
# Dependencies are found again by the package (funnelConfig.cmake), so a consumer needs only find_package(funnel).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(FUNNEL_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/funnel)
get_property(FUNNEL_LAYER_TARGETS GLOBAL PROPERTY FUNNEL_LAYERS)
get_property(FUNNEL_LAYER_DIRS GLOBAL PROPERTY FUNNEL_LAYER_DIRS)

foreach(dir ${FUNNEL_LAYER_DIRS})
  file(GLOB headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/${dir}/*.hpp)
  if(headers)
    install(FILES ${headers} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/funnel/${dir})
  endif()
endforeach()

get_property(FUNNEL_EXPORTS GLOBAL PROPERTY FUNNEL_EXPORTS)  # interface targets beside the layers (funnel_cli)
install(TARGETS ${FUNNEL_LAYER_TARGETS} funnel ${FUNNEL_EXPORTS} EXPORT funnelTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT funnelTargets NAMESPACE funnel:: DESTINATION ${FUNNEL_INSTALL_CMAKEDIR})

# Packages that later layers need (oneDNN, Boost.MPI, ...): append `find_dependency(...)` lines to this property.
get_property(FUNNEL_EXTRA_DEPENDENCIES GLOBAL PROPERTY FUNNEL_EXTRA_DEPENDENCIES)
if(FUNNEL_EXTRA_DEPENDENCIES)
  list(JOIN FUNNEL_EXTRA_DEPENDENCIES "\n" FUNNEL_EXTRA_DEPENDENCIES)
else()
  set(FUNNEL_EXTRA_DEPENDENCIES "")
endif()
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/funnelConfig.cmake.in
                              ${CMAKE_CURRENT_BINARY_DIR}/funnelConfig.cmake
                              INSTALL_DESTINATION ${FUNNEL_INSTALL_CMAKEDIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/funnelConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/funnelConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/funnelConfigVersion.cmake
        DESTINATION ${FUNNEL_INSTALL_CMAKEDIR})

if(TARGET funnel-cli)
  install(TARGETS funnel-cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
