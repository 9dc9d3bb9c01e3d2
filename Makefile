# avc — see README.md. `make demo` and `make test` are the two commands a
# newcomer needs; everything else is a building block of those.

GO      ?= go
BUILD   := build
GOFLAGS ?=
export AVC_WASM    := $(CURDIR)/$(BUILD)/avc.wasm
export AVC_LIBRARY := $(CURDIR)/$(BUILD)/libavc.so
export AVC_CLI     := $(CURDIR)/$(BUILD)/avc

# Fuzz targets run briefly by `make test` (package:target); `make fuzz`
# runs them longer.
FUZZ_TARGETS := ./agent:FuzzHandleDatagram ./lwm2m/tlv:FuzzDecode \
	./lwm2m/senml:FuzzDecodeJSON ./lwm2m/linkformat:FuzzParse ./lwm2m/text:FuzzDecode \
	./server:FuzzParseJSONValue ./agent:FuzzParseExecArgs \
	./lwm2m/senml:FuzzDecodeCBOR ./lwm2m/lwcbor:FuzzDecode ./lwm2m/cborval:FuzzDecode \
	./lwm2m:FuzzParseObjectXML ./agent:FuzzBlockOption ./lwm2m/senml:FuzzDecodePathsJSON \
	./fwpkg:FuzzVerifier ./fwpkg:FuzzUnmarshal ./fwpkg:FuzzParseManifest ./fwpkg:FuzzCompareVersions \
	./internal/httpfetch:FuzzParseContentRange ./internal/httpfetch:FuzzValidateURL \
	./agent:FuzzFirmwareDatagram ./agent:FuzzSoftwareDatagram ./internal/wsrelay:FuzzReadFrame
FUZZ_TIME    ?= 3s

.PHONY: all build lib wasm cli headers demo test deps vet unit fuzz-short fuzz \
	test-c test-python test-node test-browser test-integration bench clean

all: build

build: lib wasm cli

cli:
	$(GO) build $(GOFLAGS) -o $(BUILD)/avc ./cmd/avc

lib: headers
	$(GO) build $(GOFLAGS) -buildmode=c-shared -o $(BUILD)/libavc.so ./capi
	$(GO) build $(GOFLAGS) -buildmode=c-archive -o $(BUILD)/libavc.a ./capi
	@rm -f $(BUILD)/libavc.h  # cgo's generated header; include/ has the real ones

headers:
	@mkdir -p $(BUILD)/include
	cp include/*.h $(BUILD)/include/

wasm:
	GOOS=wasip1 GOARCH=wasm $(GO) build $(GOFLAGS) -buildmode=c-shared -ldflags='-s -w' -o $(BUILD)/avc.wasm ./wasm

demo: cli
	$(BUILD)/avc demo

deps:
	scripts/deps.sh

test: deps build vet unit fuzz-short test-c test-python test-node test-browser test-integration
	@echo "make test: all suites passed"

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./wasm

unit:
	$(GO) test -count=1 ./...

# Go's fuzzer sometimes ends a run with a bare "context deadline exceeded"
# when -fuzztime runs out while a worker is busy (no failing input is
# written then); such a run is repeated once. A real failure writes its
# input under testdata/fuzz and fails the target.
fuzz-short:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZ_TIME))"; \
		out=$$($(GO) test -run='^$$' -fuzz="^$$fn$$" -fuzztime=$(FUZZ_TIME) $$pkg 2>&1) && { echo "$$out" | tail -1; continue; }; \
		echo "$$out"; \
		if echo "$$out" | grep -q 'context deadline exceeded' && ! echo "$$out" | grep -q 'Failing input written'; then \
			echo "fuzz $$pkg $$fn: the fuzzer's own deadline, not a failure; running it again"; \
			$(GO) test -run='^$$' -fuzz="^$$fn$$" -fuzztime=$(FUZZ_TIME) $$pkg || exit 1; \
		else exit 1; fi; \
	done

fuzz:
	$(MAKE) fuzz-short FUZZ_TIME=2m

test-c: lib
	scripts/test-c.sh

test-python: lib cli
	cd bindings/python && python3 -m unittest discover -s tests -v

test-node: wasm
	node --test bindings/node/test/

# The browser binding: unit tests in Node, then examples/browser in
# headless Chromium against `avc server` through `avc relay`.
test-browser: wasm cli
	node --test bindings/browser/test/

# One package at a time: the behaviour suite measures what timing changes
# (bytes refetched after kills, retransmission schedules), and the interop
# package next to it would load both cores with its peers.
test-integration: build
	$(GO) test -p 1 -count=1 -tags integration ./test/...

bench: build
	scripts/bench.sh

clean:
	rm -rf $(BUILD)
