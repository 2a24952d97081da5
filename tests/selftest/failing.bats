#!/usr/bin/env bats
# A fixture of tests/bats/runner.bats, not part of the suite: one test
# passes, one fails.

@test "fixture: passes" {
	true
}

@test "fixture: fails" {
	false
}
