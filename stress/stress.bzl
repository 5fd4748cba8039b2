"""stress_program: a torture program of stress/ as a cc_binary (run.sh and
soak.sh run those) and a short run of the same source as a cc_test, so that
`bazel test //...` runs it in every configuration (plain, --config=tsan,
--config=asan). Keep the short runs at 2-3 s: `make test` runs them three
times on a 2-core machine."""

load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_test")
load("//tools:copts.bzl", "RCGC_COPTS")

STRESS_DEPS = [
    ":stress_util",
    "//lib:rcgc",
    "//third_party:pthread",
]

def stress_program(name, short_args, extra_deps = []):
    """The cc_binary `name` and the cc_test `name`_short (run with short_args)."""
    cc_binary(
        name = name,
        srcs = [name + ".c"],
        copts = RCGC_COPTS,
        deps = STRESS_DEPS + extra_deps,
    )
    cc_test(
        name = name + "_short",
        size = "medium",
        srcs = [name + ".c"],
        args = short_args,
        copts = RCGC_COPTS,
        deps = STRESS_DEPS + extra_deps,
    )
