# Sourced by the zkCli scripts (zkcli.sh, zkcli_sasl.sh): one zkCli session fed a batch of
# commands. Needs $zkcli, $hostport, $call_timeout_s and $work set by the script.

# zkcli_session NAME: feeds $work/NAME.in to zkCli (with the caller's environment, e.g.
# CLIENT_JVMFLAGS); stdout/stderr to $work/NAME.{out,err}, both printed (stderr without the
# JVM's SLF4J noise). A timeout fails the script; otherwise zkCli's exit status is returned.
zkcli_session() {
    local name=$1 rc=0
    timeout -k 5 "$call_timeout_s" "$zkcli" -server "$hostport" \
        <"$work/$name.in" >"$work/$name.out" 2>"$work/$name.err" || rc=$?
    grep -v -e '^SLF4J:' "$work/$name.err" >"$work/$name.err.clean" || true
    echo "=== zkCli session '$name': exit $rc; stdout:"
    cat "$work/$name.out"
    echo "=== stderr:"
    cat "$work/$name.err.clean"
    if [[ $rc -eq 124 || $rc -eq 137 ]]; then
        echo "FAIL: zkCli session '$name' timed out after ${call_timeout_s}s"
        exit 1
    fi
    return "$rc"
}
