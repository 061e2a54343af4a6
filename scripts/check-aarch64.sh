#!/usr/bin/env bash
# check-aarch64.sh — checks the AArch64 context switch (switch_aarch64_aapcs_elf_gas.S) from
# an x86-64 machine, and the same C test natively against the x86-64 switch.
#
#   scripts/check-aarch64.sh [--install]
#
# Always:
#   1. assembles the AArch64 file with clang -target aarch64-unknown-linux-gnu and checks with
#      llvm-nm / llvm-objdump that uthreads_switch, uthreads_trampoline,
#      uthreads_context_make_aarch64 and uthreads_call_on_stack are defined, start with BTI landing pads, contain no
#      system call, and that the trampoline's CFI marks the return address (x30) undefined;
#   2. checks the GNU property note emitted under -mbranch-protection=standard;
#   3. checks that the file assembles to nothing for x86-64;
#   4. builds Tests/asm/aarch64_switch_test.c natively (x86-64 switch) and runs it (with
#      backtrace.c: the frame walk of a suspended context).
# When qemu-aarch64 and aarch64-linux-gnu-gcc are present (Debian: qemu-user,
# gcc-aarch64-linux-gnu; --install installs them with apt-get), otherwise "skipped: ...":
#   5. cross-compiles the test statically and runs it under qemu-aarch64;
#   6. the same with -mbranch-protection=standard (PAC-RET + BTI) under qemu-aarch64 -cpu max,
#      where the test also maps the switch's pages with PROT_BTI and checks enforcement.
#
# Environment: CLANG (default /opt/swift/usr/bin/clang, else clang on PATH), CC (native
# compiler, default cc), UT_SWITCH_ROUNDS (round trips in the test, default 100000).
# Exits non-zero on the first failure; the last line on success is
# "check-aarch64: N passed, 0 failed[, K skipped]".
set -euo pipefail

install=0
for arg in "$@"; do
    case "$arg" in
        --install) install=1 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "check-aarch64: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
src_a64=Sources/CUThreads/switch_aarch64_aapcs_elf_gas.S
src_x86=Sources/CUThreads/switch_x86_64_sysv_elf_gas.S
context=Sources/CUThreads/context.c
backtrace=Sources/CUThreads/backtrace.c
test_c=Tests/asm/aarch64_switch_test.c
include=Sources/CUThreads/include
rounds="${UT_SWITCH_ROUNDS:-100000}"
symbols=(uthreads_switch uthreads_trampoline uthreads_context_make_aarch64 uthreads_call_on_stack)

work="$(mktemp -d "${TMPDIR:-/tmp}/check-aarch64.XXXXXX")"
trap 'rm -rf "$work"' EXIT

passed=0
skipped=0
step=""
on_error() {
    echo "FAILED: ${step:-setup}" >&2
    echo "check-aarch64: $passed passed, 1 failed"
}
trap on_error ERR

begin() { step="$1"; echo "== $1"; }
ok() { passed=$((passed + 1)); echo "ok: $step"; }
skip() { skipped=$((skipped + 1)); echo "skipped: $step: $1"; }
die() { echo "error: $*" >&2; false; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "need root to run: $*"
    fi
}

apt_install() {
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

# ---- tools

if [ -n "${CLANG:-}" ]; then :
elif [ -x /opt/swift/usr/bin/clang ]; then CLANG=/opt/swift/usr/bin/clang
elif command -v clang >/dev/null 2>&1; then CLANG="$(command -v clang)"
elif [ "$install" = 1 ]; then apt_install clang llvm; CLANG="$(command -v clang)"
else die "no clang (set CLANG, or run with --install)"
fi
llvm_tool() {  # next to clang first (the Swift toolchain ships them), then PATH
    local dir; dir="$(dirname "$CLANG")"
    if [ -x "$dir/$1" ]; then echo "$dir/$1"
    elif command -v "$1" >/dev/null 2>&1; then command -v "$1"
    else die "no $1 next to $CLANG or on PATH"
    fi
}
NM="$(llvm_tool llvm-nm)"
OBJDUMP="$(llvm_tool llvm-objdump)"
NATIVE_CC="${CC:-cc}"
command -v "$NATIVE_CC" >/dev/null 2>&1 || NATIVE_CC="$CLANG"
echo "clang: $CLANG; nm: $NM; objdump: $OBJDUMP; native cc: $NATIVE_CC"

if [ "$install" = 1 ] && ! { command -v qemu-aarch64 >/dev/null 2>&1 &&
                            command -v aarch64-linux-gnu-gcc >/dev/null 2>&1; }; then
    apt_install qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross
fi

# ---- 1. the AArch64 object

begin "assemble $src_a64 for aarch64 and check its symbols and code"
obj="$work/switch_aarch64.o"
"$CLANG" -target aarch64-unknown-linux-gnu -c "$src_a64" -o "$obj"
"$NM" --defined-only "$obj" > "$work/nm.txt"
for s in "${symbols[@]}"; do
    grep -Eq "^[0-9a-f]+ T $s\$" "$work/nm.txt" || die "$s is not defined as a global text symbol"
    echo "  defined: $(grep -E " $s\$" "$work/nm.txt")"
done
"$OBJDUMP" -d --no-show-raw-insn "$obj" > "$work/dis.txt"
first_insn() {  # first instruction of function $1
    awk -v f="<$1>:" '$2 == f { getline; sub(/^[ \t]*[0-9a-f]+:[ \t]*/, ""); print; exit }' \
        "$work/dis.txt"
}
for pair in "uthreads_switch:bti c" "uthreads_trampoline:bti jc" \
            "uthreads_context_make_aarch64:bti c" "uthreads_call_on_stack:bti c"; do
    fn="${pair%%:*}"; want="${pair#*:}"
    got="$(first_insn "$fn" | tr -s ' \t' ' ')"
    [ "$got" = "$want" ] || die "$fn starts with '$got', expected '$want'"
    echo "  $fn starts with: $got"
done
if grep -Eq '[[:space:]](svc|hvc|smc)[[:space:]]' "$work/dis.txt"; then
    die "the switch contains a system call"
fi
echo "  no svc/hvc/smc instruction"
"$OBJDUMP" --dwarf=frames "$obj" > "$work/frames.txt"
grep -q 'DW_CFA_undefined: reg30' "$work/frames.txt" ||
    die "no DW_CFA_undefined for x30 (the trampoline's return address)"
echo "  CFI: DW_CFA_undefined reg30 present"
ok

# ---- 2. branch-protection property note

begin "GNU property note under -mbranch-protection=standard"
"$CLANG" -target aarch64-unknown-linux-gnu -mbranch-protection=standard -c "$src_a64" \
    -o "$work/switch_bp.o"
"$OBJDUMP" -s -j .note.gnu.property "$work/switch_bp.o" > "$work/note.txt"
# pr_type GNU_PROPERTY_AARCH64_FEATURE_1_AND, pr_datasz 4, BTI|PAC = 3 (little endian)
grep -q '000000c0 04000000 03000000' "$work/note.txt" ||
    { cat "$work/note.txt"; die "missing or wrong AArch64 feature property (want BTI|PAC)"; }
"$CLANG" -target aarch64-unknown-linux-gnu -c "$src_a64" -o "$work/switch_nobp.o"
if "$OBJDUMP" -h "$work/switch_nobp.o" | grep -q 'note.gnu.property'; then
    die "property note emitted without -mbranch-protection"
fi
echo "  BTI|PAC advertised with branch protection, nothing without"
ok

# ---- 3. nothing on x86-64

begin "$src_a64 assembles to nothing on x86-64"
"$CLANG" -target x86_64-unknown-linux-gnu -c "$src_a64" -o "$work/switch_a64_on_x86.o"
if [ -n "$("$NM" "$work/switch_a64_on_x86.o" 2>/dev/null)" ]; then
    die "symbols defined on x86-64"
fi
ok

# ---- 4. the test, natively

begin "native x86-64 build of $test_c (with $src_x86)"
if [ "$(uname -m)" != x86_64 ]; then
    skip "host is $(uname -m), not x86_64"
else
    "$NATIVE_CC" -O2 -fno-omit-frame-pointer -Wall -Wextra -I "$include" "$test_c" "$context" \
        "$backtrace" "$src_x86" \
        -o "$work/test_x86_64"
    (cd "$work" && ./test_x86_64 "$rounds")
    ok
fi

# ---- 5, 6. the test on AArch64, under user-mode emulation

have_cross=1
missing=""
command -v qemu-aarch64 >/dev/null 2>&1 || { have_cross=0; missing+=" qemu-aarch64 (qemu-user)"; }
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 ||
    { have_cross=0; missing+=" aarch64-linux-gnu-gcc (gcc-aarch64-linux-gnu)"; }

begin "aarch64 static build of $test_c under qemu-aarch64"
if [ "$have_cross" = 0 ]; then
    skip "missing:$missing; rerun with --install"
else
    aarch64-linux-gnu-gcc -static -O2 -fno-omit-frame-pointer -Wall -Wextra -I "$include" \
        "$test_c" "$context" "$backtrace" "$src_a64" -o "$work/test_aarch64"
    (cd "$work" && ulimit -c 0 && qemu-aarch64 ./test_aarch64 "$rounds")
    ok
fi

begin "aarch64 build with -mbranch-protection=standard (PAC-RET, BTI) under qemu-aarch64 -cpu max"
if [ "$have_cross" = 0 ]; then
    skip "missing:$missing; rerun with --install"
else
    aarch64-linux-gnu-gcc -static -O2 -fno-omit-frame-pointer -Wall -Wextra \
        -mbranch-protection=standard -I "$include" "$test_c" "$context" "$backtrace" "$src_a64" \
        -o "$work/test_aarch64_bp"
    (cd "$work" && ulimit -c 0 && qemu-aarch64 -cpu max ./test_aarch64_bp "$rounds")
    ok
fi

trap - ERR
if [ "$skipped" -gt 0 ]; then
    echo "check-aarch64: $passed passed, 0 failed, $skipped skipped"
else
    echo "check-aarch64: $passed passed, 0 failed"
fi
