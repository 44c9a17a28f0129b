{
  "targets": [
    {
      "target_name": "rumpuser",
      "sources": ["rumpuser.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"]
    },
    {
      "target_name": "rumpfs_launch",
      "type": "executable",
      "sources": ["launch.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra"],
      "ldflags": ["-static"]
    }
  ]
}
