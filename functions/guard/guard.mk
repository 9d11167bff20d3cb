# guard targets, included by the top-level Makefile (include functions/guard/guard.mk).
#
#   make eval-guard           precision, recall, F1 and false-positive rates of the detectors on
#                             the labelled set in functions/guard/detect/testdata/eval (dev and
#                             held-out splits, printed separately)
#   make eval-guard-data      regenerate the set's synthetic part (seeded: same files every run)
#   make bench-guard-detect   detector throughput in MB/s per core, on 1 KiB and 32 KiB prompts
#   make train-guard-model    refit the injection n-gram model on the dev split

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
