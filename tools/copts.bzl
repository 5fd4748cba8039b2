"""Compiler flags shared by every rcgc target (house style: one .bzl)."""

RCGC_COPTS = [
    "-std=gnu11",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-unused-parameter",
    "-DCK_USE_CC_BUILTINS=1",
    "-D_GNU_SOURCE",
]
