# The two commands a new user needs: `make run` serves testdata/sample.txt
# on :8080 through the Functions Framework; `make test` runs every test.

# bash with pipefail: a recipe that pipes into tee fails when its command does.
SHELL := bash
.SHELLFLAGS := -o pipefail -c

GO    ?= go
PORT  ?= 8080
FILE_REPOSITORY_FILE_PATH ?= testdata/sample.txt
export PORT FILE_REPOSITORY_FILE_PATH

.PHONY: run test test-busy test-docker bench bench-index loadtest loadtest-10g fuzz lint build clean

## run: serve the sample file on :$(PORT) (FUNCTION_TARGET=Lines)
run:
	$(GO) run ./cmd/lineserver

## test: every unit, integration and end-to-end test (needs nginx; see README),
## then the figures the reliability and end-to-end tests measured, also when
## a test failed (then the failures' names, and exit status 1); the whole
## output is in out/test.log, a failed test's server logs in out/logs/
test:
	@mkdir -p out && rm -rf out/figures.txt out/logs
	@echo '$(GO) test -count=1 -timeout 20m ./...'
	@status=0; \
	LINESERVER_FIGURES=$(CURDIR)/out/figures.txt LINESERVER_LOGS=$(CURDIR)/out/logs \
		$(GO) test -count=1 -timeout 20m ./... 2>&1 | tee out/test.log || status=$$?; \
	echo; echo "== figures measured by the tests (out/figures.txt)"; \
	cat out/figures.txt 2>/dev/null || echo "(none)"; \
	if [ $$status -ne 0 ]; then \
		echo; echo "== FAILED (whole output in out/test.log)"; \
		grep -E '^(--- FAIL|FAIL|panic:)' out/test.log; \
	fi; \
	exit $$status

## test-busy: the reliability and end-to-end packages twice at once beside two
## CPU-bound loops, as on a busy machine (scripts/test-busy.sh)
test-busy:
	bash scripts/test-busy.sh

## test-docker: build the images and run the single-container and sharded compose tests
test-docker:
	bash scripts/test-docker.sh

## bench: Go microbenchmarks, six runs each, ready for benchstat
bench:
	@mkdir -p bench-results
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./... | tee bench-results/micro.txt

## bench-index: lines index and verify against wc -l on a 1 GB file (hyperfine)
bench-index:
	bash scripts/bench-index.sh

## loadtest: the load harness on a generated 1 GB file (wrk; see README "Performance")
loadtest:
	@mkdir -p bench-results
	$(GO) run ./cmd/lines bench --markdown bench-results/latest.md

## loadtest-10g: the same, with the shard also on a 10 GB file (about 11 GB in /tmp)
loadtest-10g:
	@mkdir -p bench-results
	$(GO) run ./cmd/lines bench --size 1GB,10GB --markdown bench-results/latest-10g.md

## fuzz: every fuzz target for FUZZTIME each (default 20s)
fuzz:
	bash scripts/fuzz.sh

## lint: gofmt, go vet, staticcheck, govulncheck
lint:
	bash scripts/lint.sh

## build: the binaries into bin/
build:
	$(GO) build -o bin/ ./cmd/...

clean:
	rm -rf bin out bench-results
