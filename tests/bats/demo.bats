#!/usr/bin/env bats
# make demo's script, as a new user runs it: it must show the traffic and
# the name going through a real danted.

load helpers

@test "make demo: wget and curl by name through danted, the proxy's log shows the name" {
	[[ -z $ASAN_RT ]] || skip "the demo runs the release build"
	run timeout 60 sh "$ROOT/scripts/demo.sh"
	expect_status 0
	expect_contains "(no answer: demo.test is unknown here)"
	expect_contains "hello from demo.test path=/via-wget peer=127.0.0.2"
	expect_contains "hello from demo.test path=/via-curl peer=127.0.0.2"
	expect_contains "ATYP: 3 address: demo.test.8080"
	expect_contains "-> 127.0.0.2."
}
