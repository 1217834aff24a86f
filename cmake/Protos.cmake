# Protocol buffers for milvus-cdc. Included from the top-level CMakeLists.txt after
# find_package(Protobuf) and find_package(gRPC CONFIG). Defines three static libraries:
#
#   cdc_milvus_proto    the official Milvus protos (common, schema, msg, rg, feder, milvus +
#                       MilvusService gRPC), fetched at configure time by scripts/fetch-protos.sh
#                       into a version-keyed cache outside the source tree.
#   cdc_internal_proto  our own protos under proto/: Milvus's internal etcd records
#                       (milvus/etcd_meta.proto, milvus/index_coord.proto) and the etcd v3 API
#                       subset (etcd/*.proto, with KV/Watch/Lease/Auth/Maintenance gRPC).
#   cdc_pulsar_proto    our own subset of Pulsar's binary protocol (pulsar/pulsar_wire.proto).
#
# Generated code lives in ${CDC_PROTO_GEN_DIR}; include it as "milvus.grpc.pb.h",
# "milvus/etcd_meta.pb.h", "etcd/rpc.grpc.pb.h", ... It is compiled without our warning flags and
# exported as a SYSTEM include dir so its headers do not trip -Wall -Wextra in our code.
#
# Offline builds: pass -DCDC_MILVUS_PROTO_DIR=<dir with common.proto, milvus.proto, ...> to skip
# the fetch script, or set MILVUS_CDC_CACHE to a pre-filled cache.

set(CDC_PROTO_FETCH_SCRIPT ${PROJECT_SOURCE_DIR}/scripts/fetch-protos.sh)
set(CDC_MILVUS_PROTO_DIR "" CACHE PATH
    "Directory holding the official Milvus .proto files; empty = run scripts/fetch-protos.sh")
set(CDC_PROTO_GEN_DIR ${PROJECT_BINARY_DIR}/proto_gen)

# ---- 1. The official Milvus protos ------------------------------------------------------------

if(CDC_MILVUS_PROTO_DIR)
  set(_cdc_milvus_proto_dir ${CDC_MILVUS_PROTO_DIR})
else()
  find_program(CDC_BASH bash REQUIRED)
  execute_process(
    COMMAND ${CDC_BASH} ${CDC_PROTO_FETCH_SCRIPT}
    OUTPUT_VARIABLE _cdc_fetch_out
    ERROR_VARIABLE _cdc_fetch_err
    RESULT_VARIABLE _cdc_fetch_rc
    OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT _cdc_fetch_rc EQUAL 0)
    message(FATAL_ERROR
      "scripts/fetch-protos.sh failed (exit ${_cdc_fetch_rc}); cannot get the Milvus .proto files.\n"
      "${_cdc_fetch_err}\n"
      "Fix the cause above, or configure with -DCDC_MILVUS_PROTO_DIR=<dir> pointing at an "
      "extracted copy of @zilliz/milvus2-sdk-node@2.5.8 package/dist/proto/proto.")
  endif()
  # The script prints only the directory on stdout; keep the last line to be safe.
  string(REGEX REPLACE ".*\n" "" _cdc_milvus_proto_dir "${_cdc_fetch_out}")
  # Re-run configure when the script (and so the pinned version) changes.
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CDC_PROTO_FETCH_SCRIPT})
endif()

set(_cdc_milvus_proto_names common schema msg rg feder milvus)
foreach(_name IN LISTS _cdc_milvus_proto_names)
  if(NOT EXISTS ${_cdc_milvus_proto_dir}/${_name}.proto)
    message(FATAL_ERROR "Milvus proto dir '${_cdc_milvus_proto_dir}' has no ${_name}.proto")
  endif()
endforeach()
message(STATUS "Milvus protos: ${_cdc_milvus_proto_dir}")

# ---- 2. Tools ---------------------------------------------------------------------------------

if(Protobuf_PROTOC_EXECUTABLE)
  set(CDC_PROTOC ${Protobuf_PROTOC_EXECUTABLE})
else()
  find_program(CDC_PROTOC protoc REQUIRED)
endif()
find_program(CDC_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
# google/protobuf/descriptor.proto comes from the system protobuf, never from the npm tarball.
set(_cdc_protobuf_include ${Protobuf_INCLUDE_DIRS})
if(NOT _cdc_protobuf_include)
  set(_cdc_protobuf_include /usr/include)
endif()
list(GET _cdc_protobuf_include 0 _cdc_protobuf_include)

file(MAKE_DIRECTORY ${CDC_PROTO_GEN_DIR})

# _cdc_protoc_generate(<out_srcs_var> ROOT <import root> FILES <rel.proto>... GRPC <rel.proto>...
#                      INCLUDES <extra import roots>... DEPENDS <files>...)
# One add_custom_command per .proto, so editing a file regenerates just that file (and whatever
# lists it in DEPENDS). GRPC lists the files that also get .grpc.pb.{h,cc}.
function(_cdc_protoc_generate out_var)
  cmake_parse_arguments(P "" "ROOT" "FILES;GRPC;INCLUDES;DEPENDS" ${ARGN})
  set(_srcs)
  set(_import_args -I${P_ROOT})
  foreach(_inc IN LISTS P_INCLUDES)
    list(APPEND _import_args -I${_inc})
  endforeach()
  list(APPEND _import_args -I${_cdc_protobuf_include})
  set(_all_inputs)
  foreach(_rel IN LISTS P_FILES)
    list(APPEND _all_inputs ${P_ROOT}/${_rel})
  endforeach()
  foreach(_rel IN LISTS P_FILES)
    string(REGEX REPLACE "\\.proto$" "" _stem ${_rel})
    set(_outs ${CDC_PROTO_GEN_DIR}/${_stem}.pb.h ${CDC_PROTO_GEN_DIR}/${_stem}.pb.cc)
    set(_plugin_args)
    if(_rel IN_LIST P_GRPC)
      list(APPEND _outs ${CDC_PROTO_GEN_DIR}/${_stem}.grpc.pb.h ${CDC_PROTO_GEN_DIR}/${_stem}.grpc.pb.cc)
      set(_plugin_args --grpc_out=${CDC_PROTO_GEN_DIR}
                       --plugin=protoc-gen-grpc=${CDC_GRPC_CPP_PLUGIN})
    endif()
    add_custom_command(
      OUTPUT ${_outs}
      COMMAND ${CDC_PROTOC} ${_import_args} --cpp_out=${CDC_PROTO_GEN_DIR} ${_plugin_args}
              ${P_ROOT}/${_rel}
      DEPENDS ${_all_inputs} ${P_DEPENDS} ${CDC_PROTOC} ${CDC_GRPC_CPP_PLUGIN}
      COMMENT "protoc ${_rel}"
      VERBATIM)
    list(APPEND _srcs ${_outs})
  endforeach()
  set(${out_var} ${_srcs} PARENT_SCOPE)
endfunction()

# Common settings for a generated-code library: no cdc warnings, PUBLIC protobuf/gRPC and the
# generated include dir.
function(_cdc_proto_library name)
  cmake_parse_arguments(L "" "" "SOURCES;LIBS" ${ARGN})
  add_library(${name} STATIC ${L_SOURCES})
  set_target_properties(${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  # Debug info for tens of thousands of generated lines costs minutes on 2 cores and helps nobody.
  target_compile_options(${name} PRIVATE -g0)
  target_include_directories(${name} SYSTEM PUBLIC ${CDC_PROTO_GEN_DIR})
  target_link_libraries(${name} PUBLIC ${L_LIBS} protobuf::libprotobuf gRPC::grpc++)
endfunction()

# ---- 3. cdc_milvus_proto ----------------------------------------------------------------------

set(_cdc_milvus_proto_files)
set(_cdc_milvus_proto_paths)
foreach(_name IN LISTS _cdc_milvus_proto_names)
  list(APPEND _cdc_milvus_proto_files ${_name}.proto)
  list(APPEND _cdc_milvus_proto_paths ${_cdc_milvus_proto_dir}/${_name}.proto)
endforeach()
_cdc_protoc_generate(_cdc_milvus_proto_srcs
  ROOT ${_cdc_milvus_proto_dir}
  FILES ${_cdc_milvus_proto_files}
  GRPC milvus.proto)
_cdc_proto_library(cdc_milvus_proto SOURCES ${_cdc_milvus_proto_srcs})

# ---- 4. cdc_internal_proto --------------------------------------------------------------------

set(_cdc_internal_proto_files
  milvus/etcd_meta.proto
  milvus/index_coord.proto
  milvus/query_coord.proto
  etcd/kv.proto
  etcd/auth.proto
  etcd/rpc.proto)
_cdc_protoc_generate(_cdc_internal_proto_srcs
  ROOT ${PROJECT_SOURCE_DIR}/proto
  FILES ${_cdc_internal_proto_files}
  GRPC etcd/rpc.proto
  INCLUDES ${_cdc_milvus_proto_dir}
  DEPENDS ${_cdc_milvus_proto_paths})
_cdc_proto_library(cdc_internal_proto SOURCES ${_cdc_internal_proto_srcs} LIBS cdc_milvus_proto)

# ---- 5. cdc_pulsar_proto ----------------------------------------------------------------------

_cdc_protoc_generate(_cdc_pulsar_proto_srcs
  ROOT ${PROJECT_SOURCE_DIR}/proto
  FILES pulsar/pulsar_wire.proto)
_cdc_proto_library(cdc_pulsar_proto SOURCES ${_cdc_pulsar_proto_srcs})
