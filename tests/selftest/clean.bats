#!/usr/bin/env bats
# A fixture of tests/bats/runner.bats, not part of the suite: one test
# passes, one is skipped, and bats exits 0.

@test "fixture: passes" {
	true
}

@test "fixture: is skipped" {
	skip "a fixture's skip"
}
