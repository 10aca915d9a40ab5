# resolverd — the two commands a newcomer needs are `make run` and `make test`.
SWIFT        ?= swift
CONFIG       ?= resolverd.yaml
# Packages the daemon needs to build and run.
APT_RUN      := libldns-dev pkg-config
# Packages the tests need: real clients (dig, kdig, drill), NSD as the reference server and
# delegating parent, Unbound as the ECS-sending recursive resolver, Prometheus for the pull
# source, systemd-analyze and setpriv for the unit and port-53 checks, curl and python3.
APT_TEST     := $(APT_RUN) dnsutils knot-dnsutils ldnsutils nsd unbound prometheus systemd util-linux curl python3
# Packages the benchmarks need.
APT_BENCH    := $(APT_TEST) dnsperf gdnsd gcc libc6-dev util-linux iproute2

.PHONY: run build release test bench microbench simulate check install fuzz fuzz-build deps-run deps-test deps-bench clean

deps-run:
	@scripts/apt-ensure $(APT_RUN)

deps-test:
	@scripts/apt-ensure $(APT_TEST)

deps-bench:
	@scripts/apt-ensure $(APT_BENCH)

build: deps-run
	$(SWIFT) build

release: deps-run
	$(SWIFT) build -c release

## Build and serve the shipped example: DNS on 127.0.0.1:5353 and [::1]:5353.
run: release
	.build/release/resolverd serve --config $(CONFIG)

## Install the binary and the systemd unit (README "Deploying"); DESTDIR for packaging.
PREFIX       ?= /usr/local
install: release
	install -D -m 0755 .build/release/resolverd $(DESTDIR)$(PREFIX)/bin/resolverd
	install -D -m 0644 dist/resolverd.service $(DESTDIR)/etc/systemd/system/resolverd.service
	sed -i 's|/usr/local/bin/resolverd|$(PREFIX)/bin/resolverd|g' $(DESTDIR)/etc/systemd/system/resolverd.service
	install -d -m 0755 $(DESTDIR)/etc/resolverd

## Validate the configuration and zones.
check: build
	.build/debug/resolverd check --config $(CONFIG)

## Install what the tests need and run every test (unit, in-process, live with dig/kdig/NSD),
## then the fuzz target for 60 s.
test: deps-test
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	$(MAKE) fuzz FUZZ_SECONDS=60

## libFuzzer on the query path (Fuzz/): decode → answer → the response must decode, be a
## response to the query and fit the transport. Debug build, so Swift's bounds checks on
## unsafe buffers stay on, with AddressSanitizer. The corpus grows in .build-fuzz/corpus
## (seeded from Fuzz/corpus, real dig/kdig/drill queries); findings go to .build-fuzz/findings.
FUZZ_SECONDS ?= 600
FUZZ_FLAGS   := -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld
fuzz-build: deps-run
	$(SWIFT) build --package-path Fuzz --build-path .build-fuzz $(FUZZ_FLAGS)

fuzz: fuzz-build
	mkdir -p .build-fuzz/corpus .build-fuzz/findings
	for seed in Fuzz/corpus/*; do [ -e .build-fuzz/corpus/$${seed##*/} ] || cp $$seed .build-fuzz/corpus/; done
	SWIFT_BACKTRACE=enable=no .build-fuzz/debug/resolverd-fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=1500 \
		-print_final_stats=1 -artifact_prefix=.build-fuzz/findings/ .build-fuzz/corpus

## resolverd vs gdnsd vs NSD with bench/loadgen, side by side (see bench/README.md);
## bench/run.sh is the older resolverd-vs-NSD run with dnsperf.
bench: deps-bench release
	bench/compare.sh

## Microbenchmarks of decode, selection and whole answers, with allocation counts
## (ordo-one/benchmark, Benchmarks/ package).
microbench: deps-run
	cd Benchmarks && $(SWIFT) package --scratch-path ../.build-bench benchmark --no-progress

## Run every scenario in scenarios/ through the steering engine: tables and SVG plots in
## docs/simulation/, and the README's example table and plot refreshed from them.
simulate: release
	.build/release/resolverd simulate scenarios/*.yaml --out docs/simulation
	python3 scripts/readme-simulation README.md docs/simulation flash-crowd

clean:
	rm -rf .build .build-fuzz .build-bench
