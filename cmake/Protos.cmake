# Placeholder: the proto helper replaces this file. Defines cdc_milvus_proto and cdc_internal_proto.
add_library(cdc_milvus_proto INTERFACE)
add_library(cdc_internal_proto INTERFACE)
