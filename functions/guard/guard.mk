# guard targets, included by the top-level Makefile (include functions/guard/guard.mk).
#
#   make eval-guard           precision, recall, F1 and false-positive rates of the detectors on
#                             the labelled set in functions/guard/detect/testdata/eval (dev and
#                             held-out splits, printed separately)
#   make eval-guard-data      regenerate the set's synthetic part (seeded: same files every run)
#   make bench-guard-detect   detector throughput in MB/s per core, on 1 KiB and 32 KiB prompts
#   make train-guard-model    refit the injection n-gram model on the dev split
#   make bench-guard          router's added overhead with the content checks on against off, at
#                             1,000 req/s for 1 KiB prompts (alternating requests, same run), and
#                             the guard function's throughput in events/s with its peak RSS

GO ?= go

.PHONY: eval-guard eval-guard-data bench-guard-detect

bench: bench-guard-detect

eval-guard:
	$(GO) run ./functions/guard/detect/cmd/eval

eval-guard-data:
	$(GO) run ./functions/guard/detect/cmd/evalgen

# -cpu 1: one core, so MB/s is per core.
bench-guard-detect:
	$(GO) test -p 1 -cpu 1 -run '^$$' -bench 'BenchmarkScan|BenchmarkSecretsWithoutPrefilter' -benchtime 2s ./functions/guard/detect/

# Refit the injection detector's n-gram model on the evaluation set's dev split (deterministic:
# the same weights every run) into functions/guard/detect/ngram_model.bin.
.PHONY: train-guard-model
train-guard-model:
	$(GO) run ./functions/guard/detect/cmd/train

# The content checks' cost: router with the full built-in policy against router with them off,
# requests alternating between the two processes; then guard's asynchronous throughput beside
# deliveries its policy does not inspect.
.PHONY: bench-guard
bench: bench-guard
BENCH_GUARD_DURATION ?= 8s
bench-guard:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./functions/router/cmd/router ./functions/router/cmd/routerbench ./functions/guard/cmd/guard ./functions/guard/cmd/guardbench
	./$(BIN)/routerbench -router ./$(BIN)/router -guard -rates 1000 -prompt-bytes 1024 -duration $(BENCH_GUARD_DURATION)
	./$(BIN)/guardbench -guard ./$(BIN)/guard
	$(GO) test -p 1 -run '^$$' -bench 'BenchmarkContentChecks|BenchmarkStreamChecks' -benchtime 5000x ./functions/router/
