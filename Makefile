# warren's two everyday commands are `make demo` and `make test`; both work on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

GO          ?= go
TESTFLAGS   ?= -race -count=1 -v
# Pinned: the module proxy can answer @latest with an old version.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

# MODULES are warren's modules, read from go.work (the one list of them): lint
# runs in each, and scripts/install-proof.sh publishes each. A new module (say
# contrib/otel) joins with `go work use ./contrib/otel`; if another module
# requires it, add its replace line to go.work too (see go.work).
MODULES := $(shell $(GO) list -m -f '{{.Dir}}' | sed 's|^$(CURDIR)|.|')

# The modules test-integration runs one by one (with their own timeouts); every other module of go.work
# but the root (contrib/prometheus, contrib/otel, ...) runs in test-modules.
INTEGRATION_MODULES := ./integration ./cmd/warren ./examples/service
OTHER_MODULES := $(filter-out . $(INTEGRATION_MODULES),$(MODULES))

# GO_LOWEST is the oldest Go release warren supports (VERSIONING.md); CI
# builds, vets and unit-tests the root module with it. The go command
# fetches that toolchain from the module proxy once (about 70 MB).
GO_LOWEST ?= go1.25.14

.PHONY: soak test test-modules test-unit test-go-lowest test-integration test-rabbitmq4 test-docker test-cluster test-cluster-rabbitmq4 fuzz lint demo bench broker broker4 install-proof tidy

## test: unit tests of the library (also on GO_LOWEST), integration tests against a real RabbitMQ,
## the Docker path (testcontainers on a private dockerd: test-docker), and the go install proof.
test: test-unit test-go-lowest test-integration test-modules test-docker install-proof

## test-unit: the root module's unit tests with the race detector and goleak.
test-unit:
	$(GO) test $(TESTFLAGS) ./...

## test-modules: the tests of every other module in go.work (e.g. contrib/*), with -race; a module whose
## tests need a broker gets one the way the integration suite does (broker.Main or warrentest.Main).
test-modules:
	@for m in $(OTHER_MODULES); do \
		$(call timed,$$m,(cd $$m && $(GO) test $(TESTFLAGS) -timeout 10m ./...)) || exit 1; \
	done
	@[ -n "$(strip $(OTHER_MODULES))" ] || echo "== no other modules in go.work"

## test-go-lowest: build, vet and unit-test (no -race) the root module with the oldest supported Go.
## GOWORK=off: go.work names a newer go line, and the root module needs no workspace.
test-go-lowest:
	$(call timed,root module on $(GO_LOWEST),GOWORK=off GOTOOLCHAIN=$(GO_LOWEST) $(GO) version && GOWORK=off GOTOOLCHAIN=$(GO_LOWEST) $(GO) build ./... && GOWORK=off GOTOOLCHAIN=$(GO_LOWEST) $(GO) vet ./... && GOWORK=off GOTOOLCHAIN=$(GO_LOWEST) $(GO) test -count=1 ./...)

# timed NAME CMD... runs CMD and prints how long it took, so a CI log shows the time of each part.
timed = start=$$(date +%s); $(2); echo "== $(1): $$(( $$(date +%s) - start ))s"

## test-integration: the whole suite against a real broker (AMQP_URL, Docker, or a private node of the
## host's rabbitmq-server: RabbitMQ 3.10.8 on Debian bookworm), then test-rabbitmq4. The package
## integration/rabbitmq4 (4.x behaviour) always runs on RabbitMQ 4.0.5.
test-integration: broker broker4
	@echo "== integration suite on the broker Find picks (the host's rabbitmq-server unless AMQP_URL or Docker; each package logs 'broker: using ... RabbitMQ X')"
	$(call timed,integration suite,cd integration && $(GO) test $(TESTFLAGS) -timeout 15m ./...)
	$(call timed,no-false-alarm soak (60s),cd integration && WARREN_SOAK=60s $(GO) test $(TESTFLAGS) -timeout 5m -run '^TestSoakNoFalseAlarm$$' ./detection/)
	$(call timed,cmd/warren,cd cmd/warren && $(GO) test $(TESTFLAGS) -timeout 10m ./...)
	$(call timed,examples/service,cd examples/service && $(GO) test $(TESTFLAGS) -timeout 5m ./...)
	$(MAKE) --no-print-directory test-rabbitmq4

## test-rabbitmq4: the packages where the broker's behaviour matters most, and the cluster tests, on RabbitMQ 4.0.5 from a cached
## Debian trixie root (WARREN_RABBITMQ=4.0; the first run builds the root, about 2 minutes, as root).
## RABBITMQ4_PKGS= (empty) skips it.
## smoke and supervisor run on 4.0.5 in test-docker instead.
RABBITMQ4_PKGS ?= ./publisher ./consumer ./cluster
test-rabbitmq4: $(if $(strip $(RABBITMQ4_PKGS)),broker4)
ifneq ($(strip $(RABBITMQ4_PKGS)),)
	@echo "== RabbitMQ 4.0.5 (WARREN_RABBITMQ=4.0): $(RABBITMQ4_PKGS); each package logs 'broker: using local RabbitMQ 4.0.5 node'"
	$(call timed,RabbitMQ 4.0.5 packages,cd integration && WARREN_RABBITMQ=4.0 $(GO) test $(TESTFLAGS) -timeout 15m $(RABBITMQ4_PKGS))
else
	@echo "== RabbitMQ 4.0.5: skipped (RABBITMQ4_PKGS is empty)"
endif

## test-docker: the Docker path for real: a private dockerd (scripts/dockerd.sh: its own socket and data
## root, never the default socket), the RabbitMQ 4.0.5 management image built from the trixie root
## (scripts/docker-image.sh; no registry needed), then DOCKER_PKGS through testcontainers-go. Each package
## logs 'broker: using Docker container ... (IMAGE)'. The engine and its containers go at the end, pass or fail.
## WARREN_DOCKER_IMAGE picks another image (users' default: rabbitmq:3.13-management).
## DOCKER_SKIP leaves out the forced-close soak (slow through docker exec; it runs on 3.10.8 in the
## whole suite): the Docker run proves the container path and 4.0.5, not the soak again.
DOCKER_PKGS ?= ./smoke ./supervisor
DOCKER_SKIP ?= ^TestSoakForcedCloses$$
DOCKER_IMAGE ?= warren/rabbitmq:4.0.5-management
test-docker: broker4
	@dir=$$(mktemp -d /tmp/warren-dockerd.XXXXXX); \
	trap 'bash $(CURDIR)/scripts/dockerd.sh stop '"$$dir"'' EXIT; \
	$(call timed,dockerd start,export $$(bash $(CURDIR)/scripts/dockerd.sh start $$dir)); \
	echo "== Docker engine at $$DOCKER_HOST"; \
	$(call timed,Docker image,bash scripts/docker-image.sh $(DOCKER_IMAGE)); \
	$(call timed,Docker path packages,cd integration && env -u AMQP_URL -u WARREN_RABBITMQ TESTCONTAINERS_RYUK_DISABLED=true \
		TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1 WARREN_DOCKER_IMAGE=$(DOCKER_IMAGE) $(GO) test $(TESTFLAGS) -timeout 15m $(if $(DOCKER_SKIP),-skip '$(DOCKER_SKIP)') $(DOCKER_PKGS))

## tidy: go mod tidy in every module of go.work (go mod tidy ignores go.work, and the sibling versions the
## go.mod files require exist only once tagged: it runs against a local proxy of this commit; VERSIONING.md).
tidy:
	bash scripts/install-proof.sh tidy

## install-proof: go install of the CLI at a version from a clean module cache and a local file proxy.
install-proof:
	$(call timed,install proof,bash scripts/install-proof.sh)

## soak: the 10-minute no-false-alarm run of dead-peer detection under load (issue 16): publishing with confirms at
## the highest rate the broker takes, consumers with prefetch, two memory alarms, GOGC=10 and a churning heap; it must
## see 0 dead-peer events, and logs the longest reply gap seen while owed. SOAK= sets the length; test-integration
## runs the 60 s version on its own, after the suite.
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

## lint: go vet and staticcheck over every module in go.work.
lint:
	@for m in $(MODULES); do echo "== lint $$m"; (cd $$m && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...) || exit 1; done

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
