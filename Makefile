# warren's two everyday commands are `make demo` and `make test`; both work on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

GO          ?= go
TESTFLAGS   ?= -race -count=1 -v
# Pinned: the module proxy can answer @latest with an old version.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test test-unit test-integration test-cluster fuzz lint demo bench broker

## test: unit tests of the library, then integration tests against a real RabbitMQ.
test: test-unit test-integration

## test-unit: the root module's unit tests with the race detector and goleak.
test-unit:
	$(GO) test $(TESTFLAGS) ./...

## test-integration: tests against a real broker (AMQP_URL, Docker, or a private local node).
test-integration: broker
	cd integration && $(GO) test $(TESTFLAGS) -timeout 15m ./...
	cd cmd/warren && $(GO) test $(TESTFLAGS) -timeout 10m ./...
	cd examples/service && $(GO) test $(TESTFLAGS) -timeout 5m ./...

## test-cluster: failover tests against a local 3-node RabbitMQ cluster with quorum queues (about 1 minute, boot included).
test-cluster: broker
	cd integration && $(GO) test $(TESTFLAGS) -timeout 10m ./cluster/

## fuzz: fuzz the URL redaction and New's URL errors for a password leak (FUZZTIME each; plain
## `go test` runs the committed seed corpus in conn/testdata/fuzz every time).
FUZZTIME ?= 5m
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzRedactURL$$' -fuzztime $(FUZZTIME) ./conn/
	$(GO) test -run '^$$' -fuzz '^FuzzNewRedacts$$' -fuzztime $(FUZZTIME) ./conn/

## broker: makes sure a broker can be found; installs Debian's rabbitmq-server when root and nothing else exists.
broker:
	bash scripts/ensure-rabbitmq.sh

## lint: go vet and staticcheck over every module.
lint:
	$(GO) vet ./...
	cd integration && $(GO) vet ./...
	cd cmd/warren && $(GO) vet ./...
	cd examples/service && $(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd integration && $(GO) run $(STATICCHECK) ./...
	cd cmd/warren && $(GO) run $(STATICCHECK) ./...
	cd examples/service && $(GO) run $(STATICCHECK) ./...

## demo: the live chaos demo against a real broker.
demo: broker
	cd cmd/warren && $(GO) run . demo $(DEMOFLAGS)

## bench: warren against raw amqp091-go and its reconnect baselines, one broker, each contender in its own
## process (about 16 minutes, the fault sweep included). Prints a Markdown table (see BENCHMARKS.md); JSON lines go to bin/bench.jsonl.
## BENCHFLAGS adds flags, e.g. BENCHFLAGS=-quick for a one-minute smoke run.
BENCHFLAGS ?=
bench: broker
	mkdir -p bin
	cd cmd/warren && $(GO) build -o ../../bin/warren .
	./bin/warren bench -json bin/bench.jsonl $(BENCHFLAGS)
