{
  "targets": [
    {
      "target_name": "uwrx_native",
      "sources": ["src/native/addon/accesses.cc", "src/native/addon/access-scan.cc", "src/native/addon/addon.cc", "src/native/addon/fds.cc", "src/native/addon/tracebuf.cc", "src/native/common/tracebuf.c", "src/native/common/escape.c", "src/native/addon/xattr.cc", "src/native/addon/remove.cc", "src/native/common/remove_tree.c", "src/native/addon/dirs.cc", "src/native/addon/spawn.cc", "src/native/addon/process.cc", "src/native/addon/digest.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "src/native/include"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags": ["-Wall", "-Wextra"],
      "cflags_cc": ["-Wall", "-Wextra", "-std=c++17"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "conditions": [["\"<!(node -p \"process.env.CI || ''\")\"!=\"\"", {"cflags_cc": ["-Werror"]}]]
    }
  ]
}
