# warren's two everyday commands are `make demo` and `make test`; both work on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

GO          ?= go
TESTFLAGS   ?= -race -count=1 -v
# Pinned: the module proxy can answer @latest with an old version.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: soak test test-unit test-integration test-rabbitmq4 test-cluster test-cluster-rabbitmq4 fuzz lint demo bench broker broker4

## test: unit tests of the library, then integration tests against a real RabbitMQ.
test: test-unit test-integration

## test-unit: the root module's unit tests with the race detector and goleak.
test-unit:
	$(GO) test $(TESTFLAGS) ./...

# timed NAME CMD... runs CMD and prints how long it took, so a CI log shows the time of each part.
timed = start=$$(date +%s); $(2); echo "== $(1): $$(( $$(date +%s) - start ))s"

## test-integration: the whole suite against a real broker (AMQP_URL, Docker, or a private node of the
## host's rabbitmq-server: RabbitMQ 3.10.8 on Debian bookworm), then test-rabbitmq4. The package
## integration/rabbitmq4 (4.x behaviour) always runs on RabbitMQ 4.0.5.
test-integration: broker broker4
	@echo "== integration suite on the broker Find picks (the host's rabbitmq-server unless AMQP_URL or Docker; each package logs 'broker: using ... RabbitMQ X')"
	$(call timed,integration suite,cd integration && $(GO) test $(TESTFLAGS) -timeout 15m ./...)
	$(call timed,cmd/warren,cd cmd/warren && $(GO) test $(TESTFLAGS) -timeout 10m ./...)
	$(call timed,examples/service,cd examples/service && $(GO) test $(TESTFLAGS) -timeout 5m ./...)
	$(MAKE) --no-print-directory test-rabbitmq4

## test-rabbitmq4: the packages where the broker's behaviour matters most, and the cluster tests, on RabbitMQ 4.0.5 from a cached
## Debian trixie root (WARREN_RABBITMQ=4.0; the first run builds the root, about 2 minutes, as root).
## RABBITMQ4_PKGS= (empty) skips it.
RABBITMQ4_PKGS ?= ./smoke ./supervisor ./publisher ./consumer ./cluster
test-rabbitmq4: $(if $(strip $(RABBITMQ4_PKGS)),broker4)
ifneq ($(strip $(RABBITMQ4_PKGS)),)
	@echo "== RabbitMQ 4.0.5 (WARREN_RABBITMQ=4.0): $(RABBITMQ4_PKGS); each package logs 'broker: using local RabbitMQ 4.0.5 node'"
	$(call timed,RabbitMQ 4.0.5 packages,cd integration && WARREN_RABBITMQ=4.0 $(GO) test $(TESTFLAGS) -timeout 15m $(RABBITMQ4_PKGS))
else
	@echo "== RabbitMQ 4.0.5: skipped (RABBITMQ4_PKGS is empty)"
endif

## soak: the 10-minute no-false-alarm run of dead-peer detection under load (issue 16): publishing with confirms at
## the highest rate the broker takes, consumers with prefetch, two memory alarms, GOGC=10 and a churning heap; it must
## see 0 dead-peer events, and logs the longest reply gap seen while owed. CI runs the same test for 60 s. SOAK= sets the length.
SOAK ?= 10m
soak: broker
	cd integration && WARREN_SOAK=$(SOAK) $(GO) test $(TESTFLAGS) -timeout 30m -run '^TestSoakNoFalseAlarm$$' ./detection/

## test-cluster: failover tests against a local 3-node RabbitMQ cluster with quorum queues (about 1 minute, boot included).
test-cluster: broker
	cd integration && $(GO) test $(TESTFLAGS) -timeout 10m ./cluster/

## fuzz: fuzz the URL redaction and New's URL errors for a password leak (FUZZTIME each; plain
## `go test` runs the committed seed corpus in conn/testdata/fuzz every time).
FUZZTIME ?= 5m
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzRedactURL$$' -fuzztime $(FUZZTIME) ./conn/
	$(GO) test -run '^$$' -fuzz '^FuzzNewRedacts$$' -fuzztime $(FUZZTIME) ./conn/

## test-cluster-rabbitmq4: test-cluster on RabbitMQ 4.0.5 (WARREN_RABBITMQ=4.0).
test-cluster-rabbitmq4: broker4
	cd integration && WARREN_RABBITMQ=4.0 $(GO) test $(TESTFLAGS) -timeout 10m ./cluster/

## broker: makes sure a broker can be found; installs Debian's rabbitmq-server when root and nothing else exists.
broker:
	bash scripts/ensure-rabbitmq.sh

## broker4: makes sure the cached Debian trixie root with RabbitMQ 4.0.5 exists; builds it (debootstrap) when root.
broker4:
	bash scripts/ensure-rabbitmq4.sh

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
